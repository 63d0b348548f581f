//! Reading fields out of an untyped JSON body with their dotted path at hand, so every
//! error names the field it is about (`package.version is missing`).
//!
//! Registry payloads are large and mostly irrelevant; walking a `serde_json::Value` reads
//! only the few fields we need and tolerates everything else.

use serde_json::Value;

use super::payload::PayloadError;

/// A place in the body: the value there (if any) and the path that leads to it.
#[derive(Clone, Debug)]
pub(super) struct Field<'a> {
    value: Option<&'a Value>,
    path: String,
}

impl<'a> Field<'a> {
    pub(super) fn root(value: &'a Value) -> Field<'a> {
        Field {
            value: Some(value),
            path: String::new(),
        }
    }

    /// The member `key` of this object; absent when this is not an object.
    pub(super) fn get(&self, key: &str) -> Field<'a> {
        let path = if self.path.is_empty() {
            key.to_string()
        } else {
            format!("{}.{key}", self.path)
        };
        Field {
            value: self
                .value
                .and_then(|v| v.as_object())
                .and_then(|o| o.get(key)),
            path,
        }
    }

    /// The JSON value here, when present.
    pub(super) fn value(&self) -> Option<&'a Value> {
        self.value
    }

    pub(super) fn path(&self) -> &str {
        if self.path.is_empty() {
            "body"
        } else {
            &self.path
        }
    }

    pub(super) fn is_present(&self) -> bool {
        !matches!(self.value, None | Some(Value::Null))
    }

    /// The string here; `None` when absent or null.
    pub(super) fn opt_str(&self) -> Result<Option<&'a str>, PayloadError> {
        match self.value {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(_) => Err(self.malformed("must be a string")),
        }
    }

    /// The string here, which must be present (it may be empty).
    pub(super) fn str(&self) -> Result<&'a str, PayloadError> {
        self.opt_str()?.ok_or_else(|| self.malformed("is missing"))
    }

    /// The string here when present and not empty; `None` otherwise.
    pub(super) fn non_empty_str(&self) -> Result<Option<&'a str>, PayloadError> {
        Ok(self.opt_str()?.filter(|s| !s.is_empty()))
    }

    pub(super) fn array(&self) -> Result<&'a [Value], PayloadError> {
        match self.value {
            None | Some(Value::Null) => Err(self.malformed("is missing")),
            Some(Value::Array(items)) => Ok(items),
            Some(_) => Err(self.malformed("must be an array")),
        }
    }

    /// An error about this field: `reason` completes the sentence "`<path>` …".
    pub(super) fn malformed(&self, reason: impl Into<String>) -> PayloadError {
        PayloadError::Malformed {
            field: self.path().to_string(),
            reason: reason.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn errors_name_the_dotted_path() {
        let body = json!({"package": {"version": 3, "owner": {}}});
        let root = Field::root(&body);
        let version = root.get("package").get("version");
        assert_eq!(
            version.str().unwrap_err().to_string(),
            "invalid webhook payload: package.version must be a string"
        );
        let login = root.get("package").get("owner").get("login");
        assert_eq!(
            login.str().unwrap_err().to_string(),
            "invalid webhook payload: package.owner.login is missing"
        );
        assert_eq!(
            root.get("package").get("version").get("deeper").opt_str(),
            Ok(None)
        );
        assert!(!root.get("nothing").is_present());
        assert_eq!(root.path(), "body");
    }
}
