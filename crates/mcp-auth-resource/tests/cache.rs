//! `CachedVerifier` in front of a counting verifier, with a manual clock.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test helpers fail loudly"
)]

use std::{
    collections::HashMap,
    sync::{
        Arc, Mutex,
        atomic::{AtomicUsize, Ordering},
    },
    time::{Duration, UNIX_EPOCH},
};

use mcp_auth_core::{Clock, ManualClock};
use mcp_auth_resource::{
    AuthInfo, CachedVerifier, TokenVerifier, VerifyError, VerifyErrorKind,
    verify::cache::DEFAULT_MAX_TTL,
};

const NOW: u64 = 1_700_000_000;

/// What the fake verifier answers for one token.
#[derive(Clone, Debug)]
enum Answer {
    /// Valid, with this `exp` (if any); the subject is the token itself.
    Valid(Option<u64>),
    Bad(VerifyErrorKind),
    Unavailable,
}

/// A verifier with a table of tokens that counts its calls per token.
#[derive(Debug)]
struct Table {
    clock: ManualClock,
    answers: Mutex<HashMap<String, Answer>>,
    calls: Mutex<HashMap<String, usize>>,
    total: AtomicUsize,
    delay: Duration,
}

impl Table {
    fn new(clock: &ManualClock) -> Self {
        Self {
            clock: clock.clone(),
            answers: Mutex::new(HashMap::new()),
            calls: Mutex::new(HashMap::new()),
            total: AtomicUsize::new(0),
            delay: Duration::ZERO,
        }
    }
    fn with(self, token: &str, answer: Answer) -> Self {
        self.set(token, answer);
        self
    }
    fn set(&self, token: &str, answer: Answer) {
        self.answers
            .lock()
            .unwrap()
            .insert(token.to_owned(), answer);
    }
    fn calls(&self, token: &str) -> usize {
        self.calls.lock().unwrap().get(token).copied().unwrap_or(0)
    }
    fn total(&self) -> usize {
        self.total.load(Ordering::SeqCst)
    }
}

impl TokenVerifier for Table {
    async fn verify(&self, token: &str) -> Result<AuthInfo, VerifyError> {
        self.total.fetch_add(1, Ordering::SeqCst);
        *self
            .calls
            .lock()
            .unwrap()
            .entry(token.to_owned())
            .or_default() += 1;
        if !self.delay.is_zero() {
            tokio::time::sleep(self.delay).await;
        }
        let answer = self.answers.lock().unwrap().get(token).cloned();
        match answer {
            Some(Answer::Valid(exp)) => {
                let mut info = AuthInfo::builder().subject(token);
                if let Some(exp) = exp {
                    // Like a JWT verifier with no leeway.
                    if self.clock.unix_seconds() >= exp {
                        return Err(VerifyErrorKind::Expired.into());
                    }
                    info = info.expires_at(exp);
                }
                Ok(info.build())
            }
            Some(Answer::Bad(kind)) => Err(kind.into()),
            Some(Answer::Unavailable) => Err(VerifyError::unavailable(None)),
            None => Err(VerifyErrorKind::InvalidSignature.into()),
        }
    }
}

fn clock() -> ManualClock {
    ManualClock::new(UNIX_EPOCH + Duration::from_secs(NOW))
}

fn cached(table: Table, clock: &ManualClock) -> CachedVerifier<Table> {
    CachedVerifier::builder(table).clock(clock.clone()).build()
}

#[tokio::test]
async fn repeated_token_calls_the_inner_verifier_once() {
    let clock = clock();
    let v = cached(
        Table::new(&clock).with("tok", Answer::Valid(Some(NOW + 3600))),
        &clock,
    );

    assert!(v.verify_cached("tok").is_none(), "a miss does not verify");
    assert_eq!(v.get_ref().total(), 0);
    for _ in 0..100 {
        assert_eq!(v.verify("tok").await.unwrap().subject(), Some("tok"));
        assert_eq!(
            v.verify_cached("tok").unwrap().unwrap().subject(),
            Some("tok")
        );
    }
    assert_eq!(v.get_ref().calls("tok"), 1);
}

#[tokio::test]
async fn different_tokens_never_share_an_entry() {
    let clock = clock();
    // Tokens that differ in one byte, by a prefix, or only in length.
    let tokens: Vec<String> = (0..200)
        .map(|i| format!("tok-{i}"))
        .chain(["tok-1 ", "tok-", "tok", "Tok-1", "tok-1\u{0}"].map(String::from))
        .collect();
    let mut table = Table::new(&clock);
    for t in &tokens {
        table = table.with(t, Answer::Valid(Some(NOW + 3600)));
    }
    let v = cached(table, &clock);

    for _ in 0..2 {
        for t in &tokens {
            assert_eq!(v.verify(t).await.unwrap().subject(), Some(t.as_str()));
            assert_eq!(
                v.verify_cached(t).unwrap().unwrap().subject(),
                Some(t.as_str())
            );
        }
    }
    // An unknown token close to a cached one is never answered from the cache.
    assert!(v.verify_cached("tok-1x").is_none());
    assert_eq!(
        v.verify("tok-1x").await.unwrap_err().kind(),
        VerifyErrorKind::InvalidSignature
    );
    for t in &tokens {
        assert_eq!(v.get_ref().calls(t), 1, "{t:?}");
    }
}

#[tokio::test]
async fn entry_expires_at_the_token_exp() {
    let clock = clock();
    let v = cached(
        Table::new(&clock).with("tok", Answer::Valid(Some(NOW + 30))),
        &clock,
    );
    assert!(v.verify("tok").await.is_ok());
    clock.advance(Duration::from_secs(29));
    assert!(v.verify_cached("tok").unwrap().is_ok());

    clock.advance(Duration::from_secs(1));
    assert!(v.verify_cached("tok").is_none(), "never past exp");
    assert_eq!(
        v.verify("tok").await.unwrap_err().kind(),
        VerifyErrorKind::Expired
    );
    assert_eq!(v.get_ref().calls("tok"), 2);
}

#[tokio::test]
async fn entry_expires_after_the_max_ttl() {
    let clock = clock();
    let v = cached(
        Table::new(&clock).with("tok", Answer::Valid(Some(NOW + 86_400))),
        &clock,
    );
    assert!(v.verify("tok").await.is_ok());
    clock.advance(DEFAULT_MAX_TTL - Duration::from_secs(1));
    assert!(v.verify_cached("tok").is_some());
    clock.advance(Duration::from_secs(1));
    assert!(v.verify_cached("tok").is_none());
    assert!(v.verify("tok").await.is_ok());
    assert_eq!(v.get_ref().calls("tok"), 2);

    let short =
        CachedVerifier::builder(Table::new(&clock).with("tok", Answer::Valid(Some(NOW + 86_400))))
            .clock(clock.clone())
            .max_ttl(Duration::from_secs(10))
            .build();
    assert!(short.verify("tok").await.is_ok());
    clock.advance(Duration::from_secs(10));
    assert!(short.verify_cached("tok").is_none());
}

#[tokio::test]
async fn token_without_exp_is_cached_for_the_max_ttl_only() {
    let clock = clock();
    let v = cached(Table::new(&clock).with("tok", Answer::Valid(None)), &clock);
    assert!(v.verify("tok").await.is_ok());
    clock.advance(DEFAULT_MAX_TTL - Duration::from_secs(1));
    assert!(v.verify_cached("tok").is_some());
    clock.advance(Duration::from_secs(1));
    assert!(v.verify_cached("tok").is_none());
}

#[tokio::test]
async fn token_accepted_past_exp_is_not_cached() {
    /// Accepts everything, reporting an `exp` already in the past (as a verifier with leeway may).
    #[derive(Debug)]
    struct Lenient(AtomicUsize);
    impl TokenVerifier for Lenient {
        async fn verify(&self, _: &str) -> Result<AuthInfo, VerifyError> {
            self.0.fetch_add(1, Ordering::SeqCst);
            Ok(AuthInfo::builder().expires_at(NOW - 5).build())
        }
    }
    let clock = clock();
    let v = CachedVerifier::builder(Lenient(AtomicUsize::new(0)))
        .clock(clock)
        .build();
    assert!(v.verify("tok").await.is_ok());
    assert!(v.verify_cached("tok").is_none());
    assert!(v.verify("tok").await.is_ok());
    assert_eq!(v.get_ref().0.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn capacity_bounds_the_number_of_entries() {
    let clock = clock();
    let mut table = Table::new(&clock);
    for i in 0..500 {
        table = table.with(&format!("tok-{i}"), Answer::Valid(Some(NOW + 3600)));
    }
    let v = CachedVerifier::builder(table)
        .clock(clock.clone())
        .capacity(16)
        .build();
    for i in 0..500 {
        assert!(v.verify(&format!("tok-{i}")).await.is_ok());
    }
    assert!(v.entry_count() <= 16, "{}", v.entry_count());
    // The ones still cached answer correctly.
    for i in 0..500 {
        let token = format!("tok-{i}");
        if let Some(hit) = v.verify_cached(&token) {
            assert_eq!(hit.unwrap().subject(), Some(token.as_str()));
        }
    }
}

#[tokio::test]
async fn unavailable_is_never_cached() {
    let clock = clock();
    let v = cached(Table::new(&clock).with("tok", Answer::Unavailable), &clock);
    for _ in 0..3 {
        assert!(v.verify("tok").await.unwrap_err().is_unavailable());
        assert!(v.verify_cached("tok").is_none());
    }
    assert_eq!(v.get_ref().calls("tok"), 3);

    // When the verifier recovers, the next request gets the real answer.
    v.get_ref().set("tok", Answer::Valid(Some(NOW + 60)));
    assert!(v.verify("tok").await.is_ok());
    assert_eq!(v.entry_count(), 1);
}

#[tokio::test]
async fn bad_tokens_are_cached_for_the_negative_ttl() {
    let clock = clock();
    let v = cached(
        Table::new(&clock).with("bad", Answer::Bad(VerifyErrorKind::InvalidSignature)),
        &clock,
    );
    for _ in 0..5 {
        assert_eq!(
            v.verify("bad").await.unwrap_err().kind(),
            VerifyErrorKind::InvalidSignature
        );
    }
    assert_eq!(
        v.verify_cached("bad").unwrap().unwrap_err().kind(),
        VerifyErrorKind::InvalidSignature
    );
    assert_eq!(v.get_ref().calls("bad"), 1);

    clock.advance(Duration::from_secs(10));
    assert!(v.verify_cached("bad").is_none());
    assert!(v.verify("bad").await.is_err());
    assert_eq!(v.get_ref().calls("bad"), 2);
}

#[tokio::test]
async fn verdicts_that_can_change_are_not_negatively_cached() {
    let clock = clock();
    let v = cached(
        Table::new(&clock)
            .with("early", Answer::Bad(VerifyErrorKind::NotYetValid))
            .with("new-kid", Answer::Bad(VerifyErrorKind::UnknownKey)),
        &clock,
    );
    for _ in 0..2 {
        assert!(v.verify("early").await.is_err());
        assert!(v.verify("new-kid").await.is_err());
    }
    assert_eq!(v.get_ref().calls("early"), 2);
    assert_eq!(v.get_ref().calls("new-kid"), 2);
}

#[tokio::test]
async fn negative_cache_can_be_disabled() {
    let clock = clock();
    let v = CachedVerifier::builder(Table::new(&clock))
        .clock(clock.clone())
        .negative_ttl(Duration::ZERO)
        .build();
    for _ in 0..3 {
        assert!(v.verify("bad").await.is_err());
    }
    assert_eq!(v.get_ref().calls("bad"), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_misses_for_one_token_are_coalesced() {
    let clock = clock();
    let mut table = Table::new(&clock).with("tok", Answer::Valid(Some(NOW + 60)));
    table.delay = Duration::from_millis(100);
    let v = Arc::new(cached(table, &clock));

    let tasks: Vec<_> = (0..32)
        .map(|_| {
            let v = Arc::clone(&v);
            tokio::spawn(async move {
                v.verify("tok")
                    .await
                    .map(|i| i.subject().map(str::to_owned))
            })
        })
        .collect();
    for task in tasks {
        assert_eq!(task.await.unwrap().unwrap().as_deref(), Some("tok"));
    }
    assert_eq!(v.get_ref().calls("tok"), 1);
}

#[tokio::test]
async fn cancelled_leader_is_replaced_by_a_waiter() {
    let clock = clock();
    let mut table = Table::new(&clock).with("tok", Answer::Valid(Some(NOW + 60)));
    table.delay = Duration::from_millis(50);
    let v = cached(table, &clock);

    // The first request gives up before the verifier answers; the second one still gets an answer.
    let leader = tokio::time::timeout(Duration::from_millis(10), v.verify("tok"));
    let (gave_up, waiter) = tokio::join!(leader, v.verify("tok"));
    assert!(gave_up.is_err());
    assert!(waiter.is_ok());
    assert!(v.verify_cached("tok").unwrap().is_ok());
}

#[tokio::test]
async fn clear_forgets_everything() {
    let clock = clock();
    let v = cached(
        Table::new(&clock).with("tok", Answer::Valid(Some(NOW + 60))),
        &clock,
    );
    assert!(v.verify("tok").await.is_ok());
    v.clear();
    assert!(v.verify_cached("tok").is_none());
    assert_eq!(v.entry_count(), 0);
}

#[tokio::test]
async fn debug_output_holds_no_tokens() {
    #[derive(Debug)]
    struct Opaque;
    impl TokenVerifier for Opaque {
        async fn verify(&self, _: &str) -> Result<AuthInfo, VerifyError> {
            Ok(AuthInfo::builder().build())
        }
    }
    let v = CachedVerifier::new(Opaque);
    assert!(v.verify("secret-token-bytes").await.is_ok());
    assert!(v.verify_cached("secret-token-bytes").is_some());
    let printed = format!("{v:?}");
    assert!(!printed.contains("secret-token"), "{printed}");
}
