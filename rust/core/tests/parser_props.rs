//! Property tests for the streaming RESP parser: any split of a valid stream parses to the same
//! commands, and arbitrary bytes never panic it.
use proptest::prelude::*;
use redisai_core::resp::Input;

fn encode(cmds: &[Vec<Vec<u8>>]) -> Vec<u8> {
    let mut v = Vec::new();
    for c in cmds {
        v.extend_from_slice(format!("*{}\r\n", c.len()).as_bytes());
        for a in c {
            v.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
            v.extend_from_slice(a);
            v.extend_from_slice(b"\r\n");
        }
    }
    v
}

/// Feeds `stream` in pieces cut at `cuts`, collecting every parsed command (with big args taken).
fn parse_in_pieces(stream: &[u8], cuts: &[usize]) -> Result<Vec<Vec<Vec<u8>>>, String> {
    let mut inp = Input::new(512 << 20);
    let mut out = Vec::new();
    let mut points: Vec<usize> = cuts.iter().map(|c| c % (stream.len() + 1)).collect();
    points.push(0);
    points.push(stream.len());
    points.sort_unstable();
    points.dedup();
    for w in points.windows(2) {
        inp.push(&stream[w[0]..w[1]]);
        loop {
            match inp.next_command() {
                Ok(Some(mut a)) => {
                    let mut cmd = Vec::new();
                    for i in 0..a.len() {
                        match a.take_owned(i) {
                            Some(b) => cmd.push(b.as_slice().to_vec()),
                            None => cmd.push(a.get(i).to_vec()),
                        }
                    }
                    out.push(cmd);
                }
                Ok(None) => break,
                Err(e) => return Err(e.0),
            }
        }
    }
    Ok(out)
}

fn arg() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        8 => proptest::collection::vec(any::<u8>(), 0..40),
        1 => proptest::collection::vec(any::<u8>(), 30_000..80_000), // crosses the big-bulk threshold
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    #[test]
    fn any_split_parses_the_same(
        cmds in proptest::collection::vec(proptest::collection::vec(arg(), 1..6), 1..6),
        cuts in proptest::collection::vec(any::<usize>(), 0..12),
    ) {
        let stream = encode(&cmds);
        let whole = parse_in_pieces(&stream, &[]).unwrap();
        prop_assert_eq!(&whole, &cmds);
        let pieces = parse_in_pieces(&stream, &cuts).unwrap();
        prop_assert_eq!(&pieces, &cmds);
    }

    #[test]
    fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..2000), cuts in proptest::collection::vec(any::<usize>(), 0..8)) {
        let _ = parse_in_pieces(&bytes, &cuts);
    }

    #[test]
    fn resp_like_garbage_never_panics(
        parts in proptest::collection::vec(prop_oneof![
            Just(b"*".to_vec()), Just(b"$".to_vec()), Just(b"\r\n".to_vec()), Just(b"-1".to_vec()),
            Just(b"3".to_vec()), Just(b"99999999999999999999".to_vec()), Just(b"abc".to_vec()), Just(b"\"".to_vec()),
        ], 0..60),
        cuts in proptest::collection::vec(any::<usize>(), 0..8),
    ) {
        let bytes: Vec<u8> = parts.concat();
        let _ = parse_in_pieces(&bytes, &cuts);
    }
}

#[test]
fn pipelined_inline_and_multibulk_mix() {
    let stream = b"PING\r\n*1\r\n$4\r\nPING\r\nECHO \"a b\"\n";
    for cut in 0..stream.len() {
        let got = parse_in_pieces(stream, &[cut]).unwrap();
        assert_eq!(got.len(), 3, "cut at {cut}");
        assert_eq!(got[2], vec![b"ECHO".to_vec(), b"a b".to_vec()]);
    }
}


/// Byte offsets where each command of `cmds` ends in `encode(cmds)`.
fn command_ends(cmds: &[Vec<Vec<u8>>]) -> Vec<usize> {
    let mut at = 0;
    cmds.iter()
        .map(|c| {
            at += encode(std::slice::from_ref(c)).len();
            at
        })
        .collect()
}

fn big_command() -> impl Strategy<Value = Vec<Vec<u8>>> {
    (
        proptest::collection::vec(any::<u8>(), 1..4),
        proptest::collection::vec(any::<u8>(), 0..3),
        40_000usize..40_003,
        any::<u8>(),
        proptest::option::of(proptest::collection::vec(any::<u8>(), 0..5)),
    )
        .prop_map(|(key, extra, len, fill, tail)| {
            let mut c = vec![b"AI.TENSORSET".to_vec(), key, extra, vec![fill; len]];
            if let Some(t) = tail {
                c.push(t); // an argument after the big one
            }
            c
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    /// Commands of (nearly) the same shape, read so that each starts a read (where the input
    /// prefetches the next command into a buffer laid out for its big bulk), with some cut
    /// further: the parse is the same whether the header matched the last one or not.
    #[test]
    fn similar_big_commands_read_one_per_read_parse_the_same(
        cmds in proptest::collection::vec(prop_oneof![
            6 => big_command(),
            1 => proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..10), 1..3),
        ], 1..8),
        cuts in proptest::collection::vec(any::<usize>(), 0..6),
    ) {
        let stream = encode(&cmds);
        let mut at: Vec<usize> = command_ends(&cmds);
        at.extend(cuts);
        let pieces = parse_in_pieces(&stream, &at).unwrap();
        prop_assert_eq!(&pieces, &cmds);
    }
}

#[test]
fn a_big_bulk_read_with_its_header_lands_aligned_and_is_not_copied() {
    let cmd = |key: &[u8], fill: u8| vec![b"SET".to_vec(), key.to_vec(), vec![fill; 100_000]];
    // (command, whether it is read into a buffer laid out like the previous command's)
    let cases = [
        (cmd(b"k1", 1), false), // first big command: nothing to go by
        (cmd(b"k2", 2), true),
        (cmd(b"key3", 3), false), // longer header than k2's
        (cmd(b"key4", 4), true),
    ];
    let mut inp = Input::new(512 << 20);
    for (c, laid_out) in &cases {
        inp.push(&encode(std::slice::from_ref(c)));
        let mut a = inp.next_command().unwrap().expect("a whole command");
        assert_eq!(a.get(1), &c[1][..]);
        assert_eq!(a.get(2), &c[2][..]);
        match a.take_owned(2) {
            Some(big) => {
                assert!(laid_out, "only a prefetched command's bulk arrives as its own buffer here");
                assert_eq!(big.as_slice(), &c[2][..]);
                assert_eq!(big.as_slice().as_ptr() as usize % 64, 0);
            }
            None => assert!(!laid_out, "the bulk should have landed in its own buffer"),
        }
        assert!(inp.next_command().unwrap().is_none());
    }
}
