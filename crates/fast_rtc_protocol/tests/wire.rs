//! Round trips against literal JSON in the shape `@mattkrick/fast-rtc-swarm@0.4.1` produces and
//! expects, and decoding of bad input.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests may panic
use fast_rtc_protocol::*;
use proptest::prelude::*;
use serde_json::{Value, json};

fn same_json(a: &str, b: Value) {
    let a: Value = serde_json::from_str(a).unwrap();
    assert_eq!(a, b);
}

// What FastRTCSwarm emits, verbatim shapes: `{...signal, id}` spreads the peer's payload first.
#[test]
fn decodes_js_client_frames() {
    assert_eq!(
        decode_client(r#"{"type":"init","userId":"HkeZx9Q3r","roomId":"room-1"}"#).unwrap(),
        ClientMsg::Init {
            user_id: Some("HkeZx9Q3r".into()),
            room_id: "room-1".into(),
            resume: None,
        }
    );
    // roomId may be a number; it names the same room as its decimal text
    let ClientMsg::Init { room_id, .. } =
        decode_client(r#"{"type":"init","userId":"u","roomId":7}"#).unwrap()
    else {
        panic!()
    };
    assert_eq!(room_id, RoomId::from("7"));
    // the JS default roomId is ''
    assert!(matches!(
        decode_client(r#"{"type":"init","userId":"u","roomId":""}"#).unwrap(),
        ClientMsg::Init { .. }
    ));
    assert_eq!(
        decode_client(r#"{"sdp":"v=0\r\n","type":"offer","id":"r1ZxqQ"}"#).unwrap(),
        ClientMsg::Offer {
            id: "r1ZxqQ".into(),
            sdp: "v=0\r\n".into()
        }
    );
    assert_eq!(
        decode_client(r#"{"type":"answer","sdp":"v=0\r\n","id":"r1ZxqQ"}"#).unwrap(),
        ClientMsg::Answer {
            id: "r1ZxqQ".into(),
            sdp: "v=0\r\n".into()
        }
    );
    let cand = r#"{"type":"candidate","candidate":{"candidate":"candidate:1 1 udp 2113937151 1b6c.local 50000 typ host generation 0 ufrag Ab12 network-cost 999","sdpMid":"0","sdpMLineIndex":0,"usernameFragment":"Ab12"},"id":"r1ZxqQ"}"#;
    let msg = decode_client(cand).unwrap();
    assert_eq!(
        msg,
        ClientMsg::Candidate {
            id: "r1ZxqQ".into(),
            candidate: Some(IceCandidate {
                candidate: "candidate:1 1 udp 2113937151 1b6c.local 50000 typ host generation 0 ufrag Ab12 network-cost 999".into(),
                sdp_mid: Some("0".into()),
                sdp_m_line_index: Some(0),
                username_fragment: Some("Ab12".into()),
            })
        }
    );
    same_json(&encode(&msg), serde_json::from_str(cand).unwrap());
    // end of candidates
    assert_eq!(
        decode_client(r#"{"type":"candidate","candidate":null,"id":"x"}"#).unwrap(),
        ClientMsg::Candidate {
            id: "x".into(),
            candidate: None
        }
    );
    // sdpMid / sdpMLineIndex may be null in toJSON()
    assert!(decode_client(r#"{"type":"candidate","candidate":{"candidate":"c","sdpMid":null,"sdpMLineIndex":null},"id":"x"}"#).is_ok());
    assert_eq!(
        decode_client(r#"{"type":"close"}"#).unwrap(),
        ClientMsg::Close
    );
}

// What FastRTCSwarm.dispatch reads: accept.{id,userId,signals[{type,sdp}|{type,candidate}]}, etc.
#[test]
fn encodes_frames_js_client_reads() {
    let accept = ServerMsg::Accept {
        id: "a1".into(),
        user_id: "alice".into(),
        signals: vec![
            Signal::Offer { sdp: "v=0".into() },
            Signal::Candidate {
                candidate: Some(IceCandidate {
                    candidate: "candidate:1".into(),
                    sdp_mid: Some("0".into()),
                    sdp_m_line_index: Some(0),
                    username_fragment: None,
                }),
            },
            Signal::Candidate { candidate: None },
        ],
    };
    same_json(
        &encode(&accept),
        json!({"type":"accept","id":"a1","userId":"alice","signals":[
            {"type":"offer","sdp":"v=0"},
            {"type":"candidate","candidate":{"candidate":"candidate:1","sdpMid":"0","sdpMLineIndex":0}},
            {"type":"candidate","candidate":null}
        ]}),
    );
    same_json(
        &encode(&ServerMsg::OfferAccepted {
            id: "a1".into(),
            user_id: "bob".into(),
        }),
        json!({"type":"offerAccepted","id":"a1","userId":"bob"}),
    );
    same_json(
        &encode(&ServerMsg::OfferRequest),
        json!({"type":"offerRequest"}),
    );
    // Without ICE servers `joined` is exactly what it was: no `iceServers` key at all.
    same_json(
        &encode(&ServerMsg::Joined {
            user_id: "u1".into(),
            ice_servers: None,
            resume_token: None,
            resumed: false,
        }),
        json!({"type":"joined","userId":"u1"}),
    );
    same_json(
        &encode(&ServerMsg::Joined {
            user_id: "u1".into(),
            ice_servers: Some(vec![
                IceServer::stun("stun:s.example:3478"),
                IceServer::turn("turn:t.example:3478?transport=udp", "1700000000:u1", "cred"),
            ]),
            resume_token: None,
            resumed: false,
        }),
        json!({"type":"joined","userId":"u1","iceServers":[
            {"urls":["stun:s.example:3478"]},
            {"urls":["turn:t.example:3478?transport=udp"],"username":"1700000000:u1","credential":"cred"}
        ]}),
    );
    same_json(
        &encode(&ServerMsg::IceServers {
            ice_servers: vec![IceServer::stun("stun:s.example:3478")],
        }),
        json!({"type":"iceServers","iceServers":[{"urls":["stun:s.example:3478"]}]}),
    );
    same_json(
        &encode(&ServerMsg::Kicked {
            user_id: "u2".into(),
            reason: "cheating".into(),
        }),
        json!({"type":"kicked","userId":"u2","reason":"cheating"}),
    );
    same_json(
        &encode(&ServerMsg::LeaveSwarm { id: "a1".into() }),
        json!({"type":"leaveSwarm","id":"a1"}),
    );
    same_json(
        &encode(&ServerMsg::Answer {
            id: "a1".into(),
            sdp: "s".into(),
        }),
        json!({"type":"answer","id":"a1","sdp":"s"}),
    );
    same_json(
        &encode(&ServerMsg::Offer {
            id: "a1".into(),
            sdp: "s".into(),
        }),
        json!({"type":"offer","id":"a1","sdp":"s"}),
    );
    same_json(
        &encode(&ServerMsg::error(ErrorCode::RoomFull, "room is full")),
        json!({"type":"signal_error","code":"room_full","message":"room is full"}),
    );
}

#[test]
fn server_frames_round_trip() {
    let frames = [
        ServerMsg::OfferRequest,
        ServerMsg::Joined {
            user_id: "me".into(),
            ice_servers: None,
            resume_token: None,
            resumed: false,
        },
        ServerMsg::Joined {
            user_id: "me".into(),
            ice_servers: Some(vec![IceServer::turn("turn:t:1", "9:me", "c")]),
            resume_token: None,
            resumed: false,
        },
        ServerMsg::IceServers {
            ice_servers: vec![],
        },
        ServerMsg::LeaveSwarm { id: "z".into() },
        ServerMsg::Candidate {
            id: "z".into(),
            candidate: None,
        },
        ServerMsg::error(ErrorCode::DuplicateIdentity, "replaced"),
    ];
    for f in frames {
        assert_eq!(decode_server(&encode(&f)).unwrap(), f);
    }
    // a signal_error without code (an older server) and with a code from a newer one
    let old = decode_server(r#"{"type":"signal_error","message":"x"}"#).unwrap();
    assert_eq!(old, ServerMsg::error(ErrorCode::Other, "x"));
    let newer =
        decode_server(r#"{"type":"signal_error","code":"brand_new","message":"x"}"#).unwrap();
    assert_eq!(newer, ServerMsg::error(ErrorCode::Other, "x"));
}

#[test]
fn error_codes_are_stable_strings() {
    for code in ErrorCode::ALL {
        let json = serde_json::to_string(code).unwrap();
        assert_eq!(json, format!("\"{}\"", code.as_str()));
        assert_eq!(serde_json::from_str::<ErrorCode>(&json).unwrap(), *code);
    }
}

#[test]
fn classifies_bad_frames() {
    let cases = [
        ("", ErrorCode::Malformed),
        ("not json", ErrorCode::Malformed),
        ("[1,2]", ErrorCode::Malformed),
        ("{}", ErrorCode::Malformed),
        (r#"{"type":42}"#, ErrorCode::Malformed),
        (r#"{"type":"offer","id":"x"}"#, ErrorCode::Malformed),
        (r#"{"type":"offer","id":5,"sdp":"s"}"#, ErrorCode::Malformed),
        (r#"{"type":"init"}"#, ErrorCode::Malformed),
        (r#"{"type":"init","roomId":{"a":1}}"#, ErrorCode::Malformed),
        (r#"{"type":"hello"}"#, ErrorCode::UnknownType),
        (
            r#"{"type":"accept","id":"x","userId":"u","signals":[]}"#,
            ErrorCode::ForbiddenType,
        ),
        (r#"{"type":"offerRequest"}"#, ErrorCode::ForbiddenType),
        (
            r#"{"type":"leaveSwarm","id":"x"}"#,
            ErrorCode::ForbiddenType,
        ),
        (
            r#"{"type":"signal_error","message":"x"}"#,
            ErrorCode::ForbiddenType,
        ),
        (
            r#"{"type":"offerAccepted","id":"x","userId":"u"}"#,
            ErrorCode::ForbiddenType,
        ),
    ];
    for (text, code) in cases {
        let err = decode_client(text).expect_err(text);
        assert_eq!(err.code(), code, "{text}: {err}");
    }
    assert_eq!(
        decode_server(r#"{"type":"init","roomId":"r"}"#)
            .unwrap_err()
            .code(),
        ErrorCode::ForbiddenType
    );
    // an absurdly long unknown type is not echoed in full
    let long = format!(r#"{{"type":"{}"}}"#, "x".repeat(10_000));
    match decode_client(&long).unwrap_err() {
        DecodeError::UnknownType(t) => assert!(t.len() <= 64),
        other => panic!("{other:?}"),
    }
}

proptest! {
    #[test]
    fn decoding_arbitrary_text_never_panics(s in ".{0,300}") {
        let _ = decode_client(&s);
        let _ = decode_server(&s);
    }

    #[test]
    fn decoding_json_like_text_never_panics(
        ty in prop_oneof![
            Just("init".to_owned()), Just("offer".to_owned()), Just("candidate".to_owned()),
            Just("answer".to_owned()), Just("close".to_owned()), Just("accept".to_owned()), "[a-z_]{0,12}"
        ],
        body in r#"(,"(id|sdp|roomId|userId|candidate|signals)":("[^"\\]{0,8}"|-?[0-9]{1,25}(\.[0-9]+)?|null|\{\}|\[\]|true))*"#,
    ) {
        let text = format!(r#"{{"type":"{ty}"{body}}}"#);
        if let Ok(msg) = decode_client(&text) {
            // anything accepted re-encodes to something that decodes to the same value
            prop_assert_eq!(decode_client(&encode(&msg)).unwrap(), msg);
        }
        let _ = decode_server(&text);
    }
}

/// Resuming a session (this project's extension): `init`'s `resume` and `joined`'s
/// `resumeToken` and `resumed` are optional and absent unless used, so the JS client's frames
/// and what it reads are unchanged.
#[test]
fn resume_fields_are_optional_and_skipped_when_absent() {
    let ClientMsg::Init { resume, .. } =
        decode_client(r#"{"type":"init","roomId":"r","resume":"abc"}"#).unwrap()
    else {
        panic!("not init");
    };
    assert!(resume.unwrap().matches(&ResumeToken::new("abc")));
    let ClientMsg::Init { resume, .. } =
        decode_client(r#"{"type":"init","roomId":"r","resume":""}"#).unwrap()
    else {
        panic!("not init");
    };
    assert!(resume.unwrap().is_request());
    same_json(
        &encode(&ClientMsg::Init {
            user_id: None,
            room_id: "r".into(),
            resume: None,
        }),
        json!({"type":"init","roomId":"r"}),
    );
    same_json(
        &encode(&ServerMsg::Joined {
            user_id: "u1".into(),
            ice_servers: None,
            resume_token: Some(ResumeToken::new("t0k")),
            resumed: true,
        }),
        json!({"type":"joined","userId":"u1","resumeToken":"t0k","resumed":true}),
    );
    let ServerMsg::Joined {
        resume_token,
        resumed,
        ..
    } = decode_server(r#"{"type":"joined","userId":"u1"}"#).unwrap()
    else {
        panic!("not joined");
    };
    assert_eq!((resume_token, resumed), (None, false));
}
