//! The test suite every [`CacheIndex`] implementation runs (rule 3 of ARCHITECTURE.md): call
//! [`run`] with a function that makes a fresh, empty index.

use crate::{Batch, CacheIndex, CacheKey, Inputs};

/// Makes a fresh, empty index.
pub type Make<'a> = &'a dyn Fn() -> Box<dyn CacheIndex>;

/// Runs every case; panics with the case's name on the first failure.
pub fn run(make: Make<'_>) {
    missing_keys_are_none(&*make());
    records_round_trip_and_later_ones_win(&*make());
    batches_are_all_or_nothing_to_readers(&*make());
    inputs_round_trip_per_position(&*make());
    concurrent_commits_lose_nothing(&*make());
    empty_batches_are_fine(&*make());
}

fn key(n: u32) -> CacheKey {
    CacheKey::of_parts(&["suite", &n.to_string()])
}

fn missing_keys_are_none(ix: &dyn CacheIndex) {
    assert_eq!(ix.get(&key(1)).unwrap(), None, "missing_keys_are_none");
    assert_eq!(
        ix.last_inputs("df#s#1").unwrap(),
        None,
        "missing_keys_are_none"
    );
}

fn records_round_trip_and_later_ones_win(ix: &dyn CacheIndex) {
    let b = Batch {
        records: vec![(key(1), "one".into()), (key(2), "{\"layer\":null}".into())],
        inputs: vec![],
    };
    ix.commit(&b).unwrap();
    assert_eq!(
        ix.get(&key(1)).unwrap().as_deref(),
        Some("one"),
        "round trip"
    );
    assert_eq!(
        ix.get(&key(2)).unwrap().as_deref(),
        Some("{\"layer\":null}"),
        "round trip"
    );
    ix.commit(&Batch {
        records: vec![(key(1), "uno".into()), (key(1), "eins".into())],
        inputs: vec![],
    })
    .unwrap();
    assert_eq!(
        ix.get(&key(1)).unwrap().as_deref(),
        Some("eins"),
        "later ones win"
    );
    assert_eq!(
        ix.get(&key(2)).unwrap().as_deref(),
        Some("{\"layer\":null}"),
        "others kept"
    );
}

fn batches_are_all_or_nothing_to_readers(ix: &dyn CacheIndex) {
    // A reader racing a batch sees either none of its records or all of them.
    let n = 200;
    let batch = Batch {
        records: (0..n).map(|i| (key(1000 + i), format!("v{i}"))).collect(),
        inputs: vec![],
    };
    std::thread::scope(|s| {
        s.spawn(|| ix.commit(&batch).unwrap());
        s.spawn(|| {
            for _ in 0..50 {
                let last = ix.get(&key(1000 + n - 1)).unwrap();
                if last.is_some() {
                    for i in 0..n {
                        assert!(ix.get(&key(1000 + i)).unwrap().is_some(), "all or nothing");
                    }
                    return;
                }
                std::thread::yield_now();
            }
        });
    });
    assert_eq!(ix.get(&key(1000)).unwrap().as_deref(), Some("v0"));
}

fn inputs_round_trip_per_position(ix: &dyn CacheIndex) {
    let a: Inputs = [("instruction".to_string(), "RUN x".to_string())].into();
    let b: Inputs = [("parent".to_string(), "k".to_string())].into();
    ix.commit(&Batch {
        records: vec![],
        inputs: vec![
            ("Dockerfile#a#2".into(), a.clone()),
            ("Dockerfile#b#2".into(), b.clone()),
        ],
    })
    .unwrap();
    assert_eq!(
        ix.last_inputs("Dockerfile#a#2").unwrap(),
        Some(a),
        "inputs per position"
    );
    assert_eq!(
        ix.last_inputs("Dockerfile#b#2").unwrap(),
        Some(b.clone()),
        "inputs per position"
    );
    let c: Inputs = [("parent".to_string(), "k2".to_string())].into();
    ix.commit(&Batch {
        records: vec![],
        inputs: vec![("Dockerfile#b#2".into(), c.clone())],
    })
    .unwrap();
    assert_eq!(
        ix.last_inputs("Dockerfile#b#2").unwrap(),
        Some(c),
        "last build wins"
    );
}

fn concurrent_commits_lose_nothing(ix: &dyn CacheIndex) {
    std::thread::scope(|s| {
        for t in 0..4u32 {
            s.spawn(move || {
                for i in 0..25u32 {
                    let k = key(5000 + t * 100 + i);
                    ix.commit(&Batch {
                        records: vec![(k, format!("{t}/{i}"))],
                        inputs: vec![],
                    })
                    .unwrap();
                }
            });
        }
    });
    for t in 0..4u32 {
        for i in 0..25u32 {
            let got = ix.get(&key(5000 + t * 100 + i)).unwrap();
            assert_eq!(
                got,
                Some(format!("{t}/{i}")),
                "concurrent commits lose nothing"
            );
        }
    }
}

fn empty_batches_are_fine(ix: &dyn CacheIndex) {
    ix.commit(&Batch::default()).unwrap();
    assert_eq!(ix.get(&key(1)).unwrap(), None, "empty batch writes nothing");
}
