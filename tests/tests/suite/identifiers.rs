//! The identifiers sent to OpenRouter with a chat, read from what the fake recorded: never the
//! client's own, nothing by default; the end-user id from its configured source; chat and message
//! ids in `metadata` when enabled and capped; the cache `session_id` derived from the chat id under a
//! key derived from `WEBUI_SECRET_KEY`; a verified user token as the identity.

use crate::callers::{session_hex, unix_now, user_jwt};
use crate::harness::{Harness, OWUI};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use sha2::Sha256;

fn hmac_hex(secret: &str, message: &str) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(message.as_bytes());
    hex::encode(mac.finalize().into_bytes())
}

#[tokio::test]
async fn open_webui_identifiers_are_sent_upstream_when_enabled() {
    let h = Harness::with_env(&[
        ("SEND_END_USER_ID", "true"),
        ("SEND_CHAT_ID", "true"),
        ("WEBUI_SECRET_KEY", "k"),
    ])
    .await;
    let mut body = Harness::chat_body("fake/echo", "who am i", true);
    body["user"] = json!("client-chosen");
    let (status, _) = h.post_with(&body, &OWUI).await;
    assert_eq!(status, 200);
    let sent = h.posted_bodies("/responses");
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0]["user"], "user-42", "{}", sent[0]);
    assert_eq!(sent[0]["metadata"]["chat_id"], "chat-7", "{}", sent[0]);
    let session = sent[0]["session_id"].as_str().unwrap_or_default();
    assert_eq!(session.len(), 64, "{}", sent[0]);
    assert!(session.chars().all(|c| c.is_ascii_hexdigit()), "{session}");
}

#[tokio::test]
async fn client_identifiers_are_never_forwarded_and_nothing_is_sent_by_default() {
    let h = Harness::with_env(&[]).await;
    h.chat_ok(
        "fake/echo",
        json!({"user": "someone-else", "session_id": "steal-their-cache",
               "metadata": {"chat_id": "not-mine", "note": "x"}}),
        &[OWUI[0], OWUI[1], ("X-OpenWebUI-Message-Id", "msg-9")],
    )
    .await;
    let body = h.last_responses();
    for key in ["user", "session_id", "metadata"] {
        assert!(body.get(key).is_none(), "{key}: {body:#}");
    }
    h.assert_spec_clean();
}

#[tokio::test]
async fn the_end_user_id_follows_its_source_and_falls_back_to_the_user_guid() {
    let headers = [
        ("X-OpenWebUI-User-Id", "user-42"),
        ("X-OpenWebUI-User-Email", "ada@example.org"),
        ("X-OpenWebUI-User-Name", "Ada%20Lovelace"),
    ];
    for (source, expected) in [
        ("id", "user-42"),
        ("email", "ada@example.org"),
        ("name", "Ada Lovelace"),
    ] {
        let h = Harness::with_env(&[("SEND_END_USER_ID", "true"), ("END_USER_ID_SOURCE", source)])
            .await;
        h.chat_ok("fake/echo", json!({"user": "spoofed"}), &headers)
            .await;
        let body = h.last_responses();
        assert_eq!(body["user"], expected, "{source}: {body:#}");
        assert_eq!(
            body["metadata"],
            json!({"user_id": "user-42"}),
            "{source}: {body:#}"
        );
        // Without the chosen field, the GUID is used.
        h.chat_ok("fake/echo", json!({}), &headers[..1]).await;
        assert_eq!(h.last_responses()["user"], "user-42", "{source}");
        h.assert_spec_clean();
    }
}

#[tokio::test]
async fn chat_and_message_ids_go_to_metadata_each_when_enabled_and_capped() {
    let long_chat = "c".repeat(700);
    let headers = [
        ("X-OpenWebUI-User-Id", "user-42"),
        ("X-OpenWebUI-Chat-Id", long_chat.as_str()),
        ("X-OpenWebUI-Message-Id", "msg-9"),
    ];
    let messages_only = Harness::with_env(&[("SEND_MESSAGE_ID", "true")]).await;
    messages_only
        .chat_ok("fake/echo", json!({}), &headers)
        .await;
    assert_eq!(
        messages_only.last_responses()["metadata"],
        json!({"message_id": "msg-9"})
    );

    let both = Harness::with_env(&[("SEND_MESSAGE_ID", "true"), ("SEND_CHAT_ID", "true")]).await;
    // Client metadata, however malformed, is replaced by the identity's.
    let junk: serde_json::Map<String, Value> = (0..20)
        .map(|i| (format!("k{i}"), json!(format!("v{i}"))))
        .chain([
            ("[bad]".to_string(), json!("x")),
            ("nested".to_string(), json!({"a": 1})),
        ])
        .collect();
    both.chat_ok("fake/echo", json!({"metadata": junk}), &headers)
        .await;
    let metadata = both.last_responses()["metadata"].clone();
    let object = metadata.as_object().unwrap();
    assert_eq!(object.len(), 2, "{metadata}");
    assert_eq!(metadata["message_id"], "msg-9");
    let chat = metadata["chat_id"].as_str().unwrap();
    assert_eq!(chat.chars().count(), 512, "OpenRouter's value limit");
    assert!(chat.chars().all(|c| c == 'c'));
    messages_only.assert_spec_clean();
    both.assert_spec_clean();
}

#[tokio::test]
async fn the_cache_session_id_is_the_hmac_of_the_chat_id_under_a_key_derived_from_the_webui_secret()
{
    let h = Harness::with_env(&[("WEBUI_SECRET_KEY", "webui-secret-1")]).await;
    h.chat_ok("fake/echo", json!({"session_id": "client-chosen"}), &OWUI)
        .await;
    assert_eq!(
        h.last_responses()["session_id"],
        session_hex("webui-secret-1", "chat-7")
    );
    // The raw secret also signs Open WebUI's own tokens: it is never the MAC key.
    assert_ne!(
        h.last_responses()["session_id"],
        hmac_hex("webui-secret-1", "chat-7")
    );
    // Another chat, another session; no chat, no session.
    h.chat_ok(
        "fake/echo",
        json!({}),
        &[OWUI[0], ("X-OpenWebUI-Chat-Id", "chat-8")],
    )
    .await;
    assert_eq!(
        h.last_responses()["session_id"],
        session_hex("webui-secret-1", "chat-8")
    );
    h.chat_ok("fake/echo", json!({"session_id": "client"}), &OWUI[..1])
        .await;
    assert!(h.last_responses().get("session_id").is_none());

    let off = Harness::with_env(&[
        ("WEBUI_SECRET_KEY", "webui-secret-1"),
        ("SEND_CACHE_SESSION_ID", "false"),
    ])
    .await;
    off.chat_ok("fake/echo", json!({}), &OWUI).await;
    assert!(off.last_responses().get("session_id").is_none());
    h.assert_spec_clean();
    off.assert_spec_clean();
}

#[tokio::test]
async fn a_verified_user_jwt_is_the_identity_and_a_forged_or_unsigned_one_is_refused() {
    const SECRET: &str = "owui-jwt-secret";
    let h = Harness::with_env(&[
        ("FORWARD_USER_INFO_HEADER_JWT_SECRET", SECRET),
        ("SEND_END_USER_ID", "true"),
        ("END_USER_ID_SOURCE", "email"),
    ])
    .await;
    let now = unix_now();
    let claims = json!({"sub": "user-jwt", "email": "jwt@example.org", "name": "Jay",
                        "role": "user", "iss": "open-webui", "iat": now, "exp": now + 300});
    let good = user_jwt(&claims, SECRET);
    // Plain identity headers are not trusted once tokens are expected.
    let spoof = ("X-OpenWebUI-User-Id", "spoofed-admin");
    h.chat_ok(
        "fake/echo",
        json!({}),
        &[("X-OpenWebUI-User-Jwt", good.as_str()), spoof],
    )
    .await;
    let body = h.last_responses();
    assert_eq!(body["user"], "jwt@example.org", "{body:#}");
    assert_eq!(body["metadata"]["user_id"], "user-jwt");

    let forged = user_jwt(&claims, "someone-elses-secret");
    let unsigned = format!(
        "{}.{}.",
        URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"JWT"}"#),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    );
    let expired = user_jwt(
        &json!({"sub": "user-jwt", "email": "jwt@example.org", "iss": "open-webui",
                "iat": 1, "exp": 2}),
        SECRET,
    );
    let sent = h.posted_bodies("/responses").len();
    for token in [&forged, &unsigned, &expired] {
        let (status, text) = h
            .post_with(
                &Harness::chat_body("fake/echo", "hello", true),
                &[("X-OpenWebUI-User-Jwt", token.as_str()), spoof],
            )
            .await;
        assert_eq!(status, 401, "{token}: {text}");
        let v: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(v["error"]["code"], "invalid_user_token", "{v}");
        assert!(
            !text.contains(token.as_str()),
            "the token is not echoed: {text}"
        );
    }
    assert_eq!(h.posted_bodies("/responses").len(), sent, "never served");
    assert!(!crate::harness::logs_text().contains(SECRET));
    h.assert_spec_clean();
}
