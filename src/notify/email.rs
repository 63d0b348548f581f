//! Email over SMTP with lettre (rustls, the system's roots): STARTTLS (required, never
//! silently plain), implicit TLS, or plain for a local relay; login when a user is given.

use lettre::message::header::ContentType;
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

use super::send::{Delivery, SEND_TIMEOUT, Sender};
use super::url::{Email, Security};

pub(super) async fn send(
    sender: &Sender,
    mail: &Email,
    delivery: &Delivery<'_>,
) -> Result<(), String> {
    let mut message = Message::builder()
        .from(
            mail.from
                .parse()
                .map_err(|e| format!("bad from address: {e}"))?,
        )
        .subject(delivery.text.title.clone())
        .header(ContentType::TEXT_PLAIN);
    for to in &mail.to {
        message = message.to(to.parse().map_err(|e| format!("bad to address: {e}"))?);
    }
    let message = message
        .body(delivery.text.body.clone())
        .map_err(|e| format!("cannot build the mail: {e}"))?;

    let tls = match mail.security {
        Security::None => Tls::None,
        Security::StartTls => Tls::Required(tls_parameters(sender, &mail.host)?),
        Security::Implicit => Tls::Wrapper(tls_parameters(sender, &mail.host)?),
    };
    let mut transport = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&mail.host)
        .port(mail.port)
        .tls(tls)
        .timeout(Some(SEND_TIMEOUT));
    if let Some(user) = &mail.username {
        transport = transport.credentials(Credentials::new(
            user.clone(),
            mail.password.clone().unwrap_or_default(),
        ));
    }
    transport
        .build()
        .send(message)
        .await
        .map(drop)
        // lettre's errors name the server's answer, never the password.
        .map_err(|e| format!("mail not accepted: {e}"))
}

fn tls_parameters(sender: &Sender, host: &str) -> Result<TlsParameters, String> {
    let mut builder = TlsParameters::builder(host.to_string());
    if let Some(pem) = &sender.endpoints.smtp_extra_root_pem {
        builder = builder.add_root_certificate(
            Certificate::from_pem(pem).map_err(|e| format!("bad extra root certificate: {e}"))?,
        );
    }
    builder
        .build_rustls()
        .map_err(|e| format!("cannot set up TLS: {e}"))
}
