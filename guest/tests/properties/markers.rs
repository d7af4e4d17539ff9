//! The artifact marker lines (`[<ULID>]: #`) that tie an answer to its stored rows.

use proptest::prelude::*;
use responses_pipe_guest::artifacts::markers::{self, Piece};
use responses_pipe_guest::artifacts::ulid;

/// A valid row id.
fn id() -> impl Strategy<Value = String> {
    prop::collection::vec(prop::sample::select(ulid::ALPHABET.to_vec()), ulid::LEN)
        .prop_map(|bytes| bytes.into_iter().map(char::from).collect())
}

/// One line of an answer: prose, a marker, a near miss, or blank.
fn line() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => any::<String>(),
        2 => id().prop_map(|id| markers::line(&id)),
        1 => (id(), prop::sample::select(vec!["\r", "\u{c}", "\u{b}", " \t", "\u{85}", "\u{2003}", "\u{3000}"]))
            .prop_map(|(id, ws)| format!("[{id}]: #{ws}")),
        1 => id().prop_map(|id| format!(" [{id}]: #")),
        1 => id().prop_map(|id| format!("\r[{id}]: #")),
        1 => id().prop_map(|id| format!("[{}]: #", id.to_lowercase())),
        1 => id().prop_map(|id| format!("[{}]: #", &id[1..])),
        1 => Just(String::new()),
        1 => Just("   \r".to_string()),
    ]
}

fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::collection::vec(line(), 0..12).prop_map(|lines| lines.join("\n")),
        any::<String>(),
    ]
}

/// Prose with no marker line in it and something visible.
fn prose() -> impl Strategy<Value = String> {
    any::<String>().prop_filter("visible prose without markers", |p| {
        !p.trim().is_empty() && markers::ids(p).is_empty()
    })
}

proptest! {
    #![proptest_config(crate::config())]

    #[test]
    fn every_id_found_is_a_valid_id_and_split_finds_the_same_ones(text in text()) {
        let ids = markers::ids(&text);
        for id in &ids {
            prop_assert!(ulid::is_valid(id), "{id}");
        }
        let from_split: Vec<String> = markers::split(&text)
            .into_iter()
            .flat_map(|p| match p {
                Piece::Markers(ids) => ids,
                Piece::Text(_) => Vec::new(),
            })
            .collect();
        prop_assert_eq!(&from_split, &ids);
        let counted = text.split('\n').filter(|l| markers::parse_line(l).is_some()).count();
        prop_assert_eq!(counted, ids.len());
    }

    #[test]
    fn split_never_yields_empty_pieces_and_runs_alternate(text in text()) {
        let pieces = markers::split(&text);
        for pair in pieces.windows(2) {
            let alternates = matches!(
                (&pair[0], &pair[1]),
                (Piece::Text(_), Piece::Markers(_)) | (Piece::Markers(_), Piece::Text(_))
            );
            prop_assert!(alternates, "{pieces:?}");
        }
        for piece in &pieces {
            match piece {
                Piece::Text(t) => prop_assert!(!t.trim().is_empty()),
                Piece::Markers(ids) => prop_assert!(!ids.is_empty()),
            }
        }
    }

    #[test]
    fn stripped_text_has_no_marker_left_and_is_never_longer(text in text()) {
        let stripped = markers::strip(&text);
        prop_assert!(markers::ids(&stripped).is_empty(), "{stripped:?}");
        prop_assert!(stripped.len() <= text.len() + 2 * markers::split(&text).len());
    }

    #[test]
    fn an_answer_with_its_marker_block_round_trips(
        prose in prose(),
        ids in prop::collection::vec(id(), 1..5),
    ) {
        let answer = format!("{prose}{}", markers::block(&ids));
        prop_assert_eq!(markers::ids(&answer), ids.clone());
        prop_assert_eq!(
            markers::split(&answer),
            vec![Piece::Text(prose.trim_end().to_string()), Piece::Markers(ids)]
        );
        prop_assert_eq!(markers::strip(&answer), prose.trim_end());
    }
}
