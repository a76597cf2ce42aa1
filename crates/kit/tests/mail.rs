//! The mailer against its real backends: the outbox folder, and a real SMTP server (Python's
//! aiosmtpd, started by the test) that accepts, or refuses, or is not there at all.

use pyairtable_kit::mail::{Email, MailError, Mailer, OutboxMailer, SmtpMailer};
use pyairtable_kit::testing::{free_port, outbox, smtp_server};

fn email(to: &str) -> Email {
    Email {
        to: to.into(),
        subject: "Bienvenue à PyAirtable ✓".into(),
        text: "Confirm: https://app.example.test/verify-email?token=abc_DEF-123\n".into(),
        html: None,
    }
}

#[tokio::test]
async fn the_outbox_keeps_whole_messages_in_order() {
    let dir = tempfile::tempdir().expect("dir");
    let mailer = OutboxMailer::new(
        dir.path().join("outbox"),
        "PyAirtable <no-reply@example.test>".parse().expect("from"),
    );
    mailer.send(email("ada@example.test")).await.expect("plain");
    let html = Email { html: Some("<p>Hello <b>Bob</b></p>".into()), ..email("bob@example.test") };
    mailer.send(html).await.expect("html");
    let sent = outbox(&dir.path().join("outbox"));
    assert_eq!(sent.len(), 2);
    assert_eq!((sent[0].to.as_str(), sent[1].to.as_str()), ("ada@example.test", "bob@example.test"));
    assert_eq!(sent[0].subject, "Bienvenue à PyAirtable ✓");
    assert!(sent[0].text.contains("token=abc_DEF-123"), "{}", sent[0].text);
    assert!(sent[1].html.as_deref().is_some_and(|h| h.contains("<b>Bob</b>")));
    let leftovers = std::fs::read_dir(dir.path().join("outbox"))
        .expect("dir")
        .flatten()
        .filter(|e| e.path().extension().is_none_or(|x| x != "eml"));
    assert_eq!(leftovers.count(), 0, "no temporary files left behind");

    let refused = mailer.send(email("not an address")).await;
    assert!(matches!(refused, Err(MailError::BadAddress(_))), "{refused:?}");
    assert_eq!(outbox(&dir.path().join("outbox")).len(), 2, "nothing written for a bad address");
}

#[tokio::test]
async fn smtp_delivers_to_a_real_server() {
    let dir = tempfile::tempdir().expect("dir");
    let (_server, port) = smtp_server("accept", dir.path()).await;
    let from = "PyAirtable <no-reply@example.test>".parse().expect("from");
    let mailer = SmtpMailer::new(&format!("smtp://127.0.0.1:{port}"), from).expect("mailer");
    mailer.send(email("ada@example.test")).await.expect("sent");
    let received = std::fs::read_to_string(dir.path().join("1.eml")).expect("the server got it");
    let (recipients, message) = received.split_once('\n').expect("envelope line");
    assert_eq!(recipients, "ada@example.test");
    // Read what the server received with the same parser as the outbox.
    let parsed = tempfile::tempdir().expect("dir");
    std::fs::write(parsed.path().join("received.eml"), message).expect("write");
    let received = &outbox(parsed.path())[0];
    assert_eq!(received.to, "ada@example.test");
    assert_eq!(received.subject, "Bienvenue à PyAirtable ✓", "the unicode subject survives SMTP");
    assert!(received.text.contains("token=abc_DEF-123"), "{}", received.text);
}

#[tokio::test]
async fn smtp_refusals_and_outages_are_told_apart() {
    let dir = tempfile::tempdir().expect("dir");
    let (_server, port) = smtp_server("refuse", dir.path()).await;
    let from: lettre::message::Mailbox = "PyAirtable <no-reply@example.test>".parse().expect("from");
    let refusing = SmtpMailer::new(&format!("smtp://127.0.0.1:{port}"), from.clone()).expect("mailer");
    let refused = refusing.send(email("ada@example.test")).await;
    assert!(matches!(refused, Err(MailError::Refused(_))), "a 550 is permanent: {refused:?}");

    let nobody = SmtpMailer::new(&format!("smtp://127.0.0.1:{}", free_port()), from).expect("mailer");
    let down = nobody.send(email("ada@example.test")).await;
    assert!(matches!(down, Err(MailError::Transient(_))), "a closed port is worth retrying: {down:?}");
}
