//! The storage conformance suite: what every [`Storage`] backend must do, written once against
//! the traits (each case takes the narrowest one it needs). A backend runs it with
//! `conformance_suite!(expression making a fresh, empty storage; it may await)` in its own
//! tests, or a list of cases with `conformance_suite!(@cases make; case …)`; SQLite does (below `sqlite.rs`), and a second backend must pass
//! the same cases before it is used. The cases are the guarantees the services and the run
//! manager rely on: filters hide rows everywhere, all-or-nothing deletions, one running run
//! per thread, conditional run ends, the cron schedule, guarded store writes.

use serde_json::{Map, Value, json};
use uuid::Uuid;

use super::*;
use crate::auth::Filter;

/// The process the cases claim runs as.
const ME: Uuid = Uuid::from_u128(7);
const LEASE: Lease = Lease { owner: ME, until: 1_000_000 };

fn object(value: Value) -> Map<String, Value> {
    value.as_object().cloned().expect("an object")
}

fn owner(identity: &str) -> Filter {
    Filter::parse(&json!({"owner": identity})).expect("a filter")
}

fn thread_of(identity: &str) -> Thread {
    Thread {
        thread_id: Uuid::new_v4(),
        created_at: 1,
        updated_at: 1,
        state_updated_at: 1,
        metadata: object(json!({"owner": identity})),
        config: Map::new(),
        status: ThreadStatus::Idle,
        values: None,
        interrupts: Map::new(),
        error: None,
        ttl: None,
    }
}

fn run_on(thread_id: Uuid, assistant_id: Uuid, created_at: i64) -> Run {
    Run {
        run_id: Uuid::now_v7(),
        thread_id,
        assistant_id,
        created_at,
        updated_at: created_at,
        status: RunStatus::Pending,
        metadata: Map::new(),
        multitask_strategy: "enqueue".to_string(),
        kwargs: Map::new(),
    }
}

fn assistant_of(identity: &str) -> Assistant {
    Assistant {
        assistant_id: Uuid::new_v4(),
        graph_id: "agent".to_string(),
        name: "mine".to_string(),
        description: None,
        config: Map::new(),
        context: Map::new(),
        metadata: object(json!({"owner": identity})),
        version: 1,
        created_at: 1,
        updated_at: 1,
    }
}

fn cron_of(identity: &str, assistant_id: Uuid, thread_id: Option<Uuid>, next_run_date: Option<i64>) -> Cron {
    Cron {
        cron_id: Uuid::new_v4(),
        assistant_id,
        thread_id,
        on_run_completed: None,
        end_time: None,
        end_time_micros: None,
        schedule: "* * * * *".to_string(),
        timezone: None,
        created_at: 1,
        updated_at: 1,
        payload: Map::new(),
        user_id: Some(identity.to_string()),
        next_run_date,
        metadata: object(json!({"owner": identity})),
        enabled: true,
        creator: None,
    }
}

fn outcome(values: Value, status: ThreadStatus) -> ThreadOutcome {
    ThreadOutcome { values: Some(values), interrupts: Map::new(), status, error: None }
}

/// A filter hides a thread from every read and write; an id taken by a hidden row is a
/// conflict, never the other user's row.
pub(crate) async fn filters_hide_threads(storage: &dyn Threads) {
    let alice = storage.create_thread(thread_of("alice"), IfExists::Raise, None).await.unwrap();
    let id = alice.thread_id;
    assert_eq!(storage.get_thread(id, Some(owner("alice"))).await.unwrap().thread_id, id);
    assert_eq!(storage.get_thread(id, Some(owner("bob"))).await, Err(StorageError::NotFound));
    assert_eq!(storage.patch_thread(id, object(json!({"x": 1})), None, Some(owner("bob")), 2).await.map(drop), Err(StorageError::NotFound));
    assert_eq!(storage.delete_thread(id, Some(owner("bob"))).await, Err(StorageError::NotFound));
    let taken = Thread { thread_id: id, ..thread_of("bob") };
    assert_eq!(storage.create_thread(taken.clone(), IfExists::DoNothing, Some(owner("bob"))).await.map(drop), Err(StorageError::Conflict));
    assert_eq!(storage.create_thread(taken.clone(), IfExists::Raise, None).await.map(drop), Err(StorageError::Conflict));
    assert_eq!(storage.create_thread(taken.clone(), IfExists::DoNothing, Some(owner("alice"))).await.unwrap().metadata, alice.metadata, "do_nothing answers the existing row");
    let query = ThreadQuery { auth: Some(owner("bob")), ..ThreadQuery::default() };
    assert!(storage.search_threads(query.clone(), ThreadSortBy::CreatedAt, SortOrder::Asc, 10, 0).await.unwrap().is_empty());
    assert_eq!(storage.count_threads(query.clone()).await.unwrap(), 0);
    assert_eq!(storage.get_thread(id, None).await.unwrap().metadata, alice.metadata, "nothing of bob's attempts changed it");
}

/// `delete_threads`: each target only if it passes its own filter; with `Refuse`, one hidden
/// target means nothing is deleted.
pub(crate) async fn thread_deletion_is_all_or_nothing(storage: &dyn Threads) {
    let mine = storage.create_thread(thread_of("alice"), IfExists::Raise, None).await.unwrap().thread_id;
    let theirs = storage.create_thread(thread_of("bob"), IfExists::Raise, None).await.unwrap().thread_id;
    let missing = Uuid::new_v4();
    let targets = vec![(mine, Some(owner("alice"))), (theirs, Some(owner("alice"))), (missing, Some(owner("alice")))];
    assert_eq!(storage.delete_threads(targets.clone(), Hidden::Refuse).await, Err(StorageError::NotFound));
    assert!(storage.get_thread(mine, None).await.is_ok(), "a refused deletion deleted nothing");
    assert_eq!(storage.delete_threads(targets.clone(), Hidden::Skip).await.unwrap().thread_ids, vec![mine]);
    assert_eq!(storage.get_thread(mine, None).await, Err(StorageError::NotFound));
    assert!(storage.get_thread(theirs, None).await.is_ok());
}

/// A thread's deletion takes its runs and crons along.
pub(crate) async fn thread_deletion_cascades(storage: &dyn Storage) {
    let assistant = storage.create_assistant(assistant_of("alice"), IfExists::Raise, None).await.unwrap().assistant_id;
    let thread = storage.create_thread(thread_of("alice"), IfExists::Raise, None).await.unwrap().thread_id;
    let run = run_on(thread, assistant, 1);
    storage.insert_run(run.clone(), Map::new()).await.unwrap();
    let cron = cron_of("alice", assistant, Some(thread), Some(10));
    storage.create_cron(cron.clone()).await.unwrap();
    storage.delete_thread(thread, None).await.unwrap();
    assert_eq!(storage.get_run(thread, run.run_id).await, Err(StorageError::NotFound));
    assert_eq!(storage.get_cron(cron.cron_id, None).await, Err(StorageError::NotFound));
    assert_eq!(storage.claim_next_run(100, LEASE).await.unwrap(), None, "a deleted thread's run never starts");
}

/// Runs: a pending run makes its thread busy; one runs at a time per thread, oldest first;
/// other threads' runs are not held up.
pub(crate) async fn one_running_run_per_thread(storage: &dyn Storage) {
    let assistant = Uuid::new_v4();
    let first_thread = storage.create_thread(thread_of("alice"), IfExists::Raise, None).await.unwrap().thread_id;
    let second_thread = storage.create_thread(thread_of("alice"), IfExists::Raise, None).await.unwrap().thread_id;
    let (first, second, other) = (run_on(first_thread, assistant, 1), run_on(first_thread, assistant, 2), run_on(second_thread, assistant, 3));
    for run in [&first, &second, &other] {
        storage.insert_run(run.clone(), object(json!({"assistant_id": assistant.to_string()}))).await.unwrap();
    }
    assert_eq!(storage.get_thread(first_thread, None).await.unwrap().status, ThreadStatus::Busy);
    assert_eq!(storage.get_thread(first_thread, None).await.unwrap().metadata["assistant_id"], json!(assistant.to_string()));
    assert_eq!(storage.claim_next_run(10, LEASE).await.unwrap().map(|run| run.run_id), Some(first.run_id));
    assert_eq!(storage.claim_next_run(10, LEASE).await.unwrap().map(|run| run.run_id), Some(other.run_id), "the busy thread's next run waits");
    assert_eq!(storage.claim_next_run(10, LEASE).await.unwrap(), None);
    assert_eq!(storage.active_runs(first_thread).await.unwrap().iter().map(|run| run.run_id).collect::<Vec<_>>(), [first.run_id, second.run_id]);
    assert!(storage.finish_run(first.run_id, first_thread, ME, Some(RunStatus::Success), outcome(json!({"n": 1}), ThreadStatus::Idle), 20).await.unwrap());
    assert_eq!(storage.get_run(first_thread, first.run_id).await.unwrap().status, RunStatus::Success);
    let thread = storage.get_thread(first_thread, None).await.unwrap();
    assert_eq!((thread.status, thread.values), (ThreadStatus::Busy, Some(json!({"n": 1}))), "busy while another run is active");
    assert_eq!(storage.claim_next_run(30, LEASE).await.unwrap().map(|run| run.run_id), Some(second.run_id));
}

/// A run's scheduled start is respected, and `next_pending_start` names the earliest.
pub(crate) async fn scheduled_runs_wait_for_their_time(storage: &dyn Storage) {
    let thread = storage.create_thread(thread_of("alice"), IfExists::Raise, None).await.unwrap().thread_id;
    let later = run_on(thread, Uuid::new_v4(), 1_000);
    storage.insert_run(later.clone(), Map::new()).await.unwrap();
    assert_eq!(storage.claim_next_run(999, LEASE).await.unwrap(), None);
    assert_eq!(storage.next_pending_start().await.unwrap(), Some(1_000));
    assert_eq!(storage.claim_next_run(1_000, LEASE).await.unwrap().map(|run| run.run_id), Some(later.run_id));
}

/// `end_pending_run` ends a run only while nobody claimed it; `finish_run` of a run whose
/// row is gone changes nothing, even on a new thread with the same id.
pub(crate) async fn run_ends_are_conditional(storage: &dyn Storage) {
    let assistant = Uuid::new_v4();
    let thread = storage.create_thread(thread_of("alice"), IfExists::Raise, None).await.unwrap().thread_id;
    let pending = run_on(thread, assistant, 1);
    storage.insert_run(pending.clone(), Map::new()).await.unwrap();
    assert!(storage.end_pending_run(pending.run_id, Some(RunStatus::Interrupted), 2).await.unwrap());
    assert_eq!(storage.get_run(thread, pending.run_id).await.unwrap().status, RunStatus::Interrupted);
    assert!(!storage.end_pending_run(pending.run_id, None, 3).await.unwrap(), "no longer pending");

    let claimed = run_on(thread, assistant, 4);
    storage.insert_run(claimed.clone(), Map::new()).await.unwrap();
    assert_eq!(storage.claim_next_run(5, LEASE).await.unwrap().map(|run| run.run_id), Some(claimed.run_id));
    assert!(!storage.end_pending_run(claimed.run_id, None, 6).await.unwrap(), "a claimed run is the executor's to end");
    assert_eq!(storage.get_run(thread, claimed.run_id).await.unwrap().status, RunStatus::Running);

    storage.delete_thread(thread, None).await.unwrap();
    storage.create_thread(Thread { thread_id: thread, ..thread_of("bob") }, IfExists::Raise, None).await.unwrap();
    assert!(!storage.finish_run(claimed.run_id, thread, ME, Some(RunStatus::Success), outcome(json!({"alice": "secret"}), ThreadStatus::Idle), 7).await.unwrap());
    assert_eq!(storage.get_thread(thread, None).await.unwrap().values, None, "bob's thread never receives alice's run's state");
}

/// Runs left `running` by a previous process end as errors; pending ones stay.
pub(crate) async fn interrupted_runs_are_recovered(storage: &dyn Storage) {
    let thread = storage.create_thread(thread_of("alice"), IfExists::Raise, None).await.unwrap().thread_id;
    let (running, pending) = (run_on(thread, Uuid::new_v4(), 1), run_on(thread, Uuid::new_v4(), 2));
    storage.insert_run(running.clone(), Map::new()).await.unwrap();
    storage.insert_run(pending.clone(), Map::new()).await.unwrap();
    storage.claim_next_run(3, LEASE).await.unwrap();
    assert_eq!(storage.recover_interrupted_runs(Uuid::new_v4(), LEASE.until + 1).await.unwrap(), 1);
    assert_eq!(storage.get_run(thread, running.run_id).await.unwrap().status, RunStatus::Error);
    assert_eq!(storage.get_run(thread, pending.run_id).await.unwrap().status, RunStatus::Pending);
}

/// An assistant's deletion needs every one of its crons in the cascade and passing its filter
/// (else nothing is deleted), and takes only the cascade's threads that still belong to it.
pub(crate) async fn assistant_deletion_is_all_or_nothing(storage: &dyn Storage) {
    let assistant = storage.create_assistant(assistant_of("alice"), IfExists::Raise, None).await.unwrap().assistant_id;
    let cron = cron_of("alice", assistant, None, Some(10));
    storage.create_cron(cron.clone()).await.unwrap();
    let mut on_it = thread_of("alice");
    on_it.metadata.insert("assistant_id".to_string(), json!(assistant.to_string()));
    let on_it = storage.create_thread(on_it.clone(), IfExists::Raise, None).await.unwrap().thread_id;
    let elsewhere = storage.create_thread(thread_of("alice"), IfExists::Raise, None).await.unwrap().thread_id;
    let threads = vec![(on_it, None), (elsewhere, None)];

    let without_crons = AssistantCascade { threads: threads.clone(), crons: Vec::new() };
    assert_eq!(storage.delete_assistant(assistant, None, without_crons.clone()).await, Err(StorageError::Conflict));
    let hidden_cron = AssistantCascade { threads: threads.clone(), crons: vec![(cron.cron_id, Some(owner("bob")))] };
    assert_eq!(storage.delete_assistant(assistant, None, hidden_cron.clone()).await, Err(StorageError::Conflict));
    assert!(storage.get_assistant(assistant, None).await.is_ok() && storage.get_thread(on_it, None).await.is_ok(), "a refused cascade deleted nothing");
    assert_eq!(storage.delete_assistant(assistant, Some(owner("bob")), AssistantCascade::default()).await, Err(StorageError::NotFound));

    let whole = AssistantCascade { threads, crons: vec![(cron.cron_id, Some(owner("alice")))] };
    assert_eq!(storage.delete_assistant(assistant, Some(owner("alice")), whole.clone()).await.unwrap().thread_ids, vec![on_it]);
    assert_eq!(storage.get_assistant(assistant, None).await.map(drop), Err(StorageError::NotFound));
    assert_eq!(storage.get_cron(cron.cron_id, None).await, Err(StorageError::NotFound));
    assert!(storage.get_thread(elsewhere, None).await.is_ok(), "a thread of another assistant stays");
}

/// Due crons are those enabled with `next_run_date` passed; moving it takes a cron out.
pub(crate) async fn crons_come_due_and_move_on(storage: &dyn Storage) {
    let assistant = storage.create_assistant(assistant_of("alice"), IfExists::Raise, None).await.unwrap().assistant_id;
    let due = cron_of("alice", assistant, None, Some(10));
    let later = cron_of("alice", assistant, None, Some(1_000));
    let never = cron_of("alice", assistant, None, None);
    for cron in [&due, &later, &never] {
        storage.create_cron(cron.clone()).await.unwrap();
    }
    assert_eq!(storage.due_crons(100).await.unwrap().iter().map(|cron| cron.cron_id).collect::<Vec<_>>(), [due.cron_id]);
    // Two processes read it as due: one moves it on, the other then does not.
    assert!(storage.advance_cron(due.cron_id, Some(10), Some(2_000), 100).await.unwrap());
    assert!(!storage.advance_cron(due.cron_id, Some(10), Some(3_000), 100).await.unwrap());
    assert!(storage.due_crons(100).await.unwrap().is_empty());
    assert_eq!(storage.get_cron(due.cron_id, None).await.unwrap().next_run_date, Some(2_000));
    assert_eq!(storage.get_cron(due.cron_id, Some(owner("bob"))).await, Err(StorageError::NotFound));
    assert_eq!(storage.delete_cron(due.cron_id, Some(owner("bob"))).await, Err(StorageError::NotFound));
}

/// A guarded put writes only when the new value and the one it replaces both pass; a
/// guarded delete only removes an item that passes.
pub(crate) async fn store_writes_are_guarded(storage: &dyn Items) {
    let namespace = vec!["users".to_string(), "alice".to_string()];
    let guard = object(json!({"owner": "alice"}));
    assert!(storage.put_item(namespace.clone(), "k".to_string(), ItemWrite::value(object(json!({"owner": "alice", "n": 1}))), Some(guard.clone()), 1).await.unwrap());
    assert!(!storage.put_item(namespace.clone(), "k".to_string(), ItemWrite::value(object(json!({"owner": "bob"}))), Some(guard.clone()), 2).await.unwrap(), "the new value fails the guard");
    let bobs_guard = object(json!({"owner": "bob"}));
    assert!(!storage.put_item(namespace.clone(), "k".to_string(), ItemWrite::value(object(json!({"owner": "bob"}))), Some(bobs_guard.clone()), 3).await.unwrap(), "the replaced value fails the guard");
    let item = storage.get_item(namespace.clone(), "k".to_string(), 0).await.unwrap().expect("the item");
    assert_eq!((item.value["n"].clone(), item.created_at), (json!(1), 1));
    storage.delete_item(namespace.clone(), "k".to_string(), Some(bobs_guard.clone())).await.unwrap();
    assert!(storage.get_item(namespace.clone(), "k".to_string(), 0).await.unwrap().is_some(), "a guarded delete left an item that fails it");
    assert!(storage.put_item(namespace.clone(), "k".to_string(), ItemWrite::value(object(json!({"owner": "alice", "n": 2}))), None, 4).await.unwrap());
    assert_eq!(storage.get_item(namespace.clone(), "k".to_string(), 0).await.unwrap().map(|item| (item.created_at, item.updated_at)), Some((1, 4)), "a replaced item keeps created_at");
    storage.put_item(vec!["users".to_string(), "alicex".to_string()], "k".to_string(), ItemWrite::value(Map::new()), None, 5).await.unwrap();
    assert_eq!(storage.items_under(namespace.clone(), 0).await.unwrap().len(), 1, "a prefix matches whole labels");
    assert_eq!(storage.namespaces(0).await.unwrap(), [vec!["users".to_string(), "alice".to_string()], vec!["users".to_string(), "alicex".to_string()]]);
    // Labels are checked before storage (`store::check_labels`); a backend still refuses a
    // label that could not be told apart from two, rather than store it.
    assert!(storage.put_item(vec!["users".to_string(), "alice.smith".to_string()], "k".to_string(), ItemWrite::value(Map::new()), None, 6).await.is_err(), "a label with a period is refused");
    assert_eq!(storage.items_under(namespace.clone(), 0).await.unwrap().len(), 1);
    storage.delete_item(namespace.clone(), "k".to_string(), Some(guard.clone())).await.unwrap();
    assert_eq!(storage.get_item(namespace.clone(), "k".to_string(), 0).await.unwrap(), None);
}

/// A semantic query ranks the live items under its prefix that pass its filters by their
/// vectors (written with the item, in its transaction): best first, the unscored after,
/// newest first; then the page. A re-put without vectors is no longer scored; a delete or an
/// expiry removes the item from the ranking.
pub(crate) async fn store_queries_rank_by_vectors(storage: &dyn Items) {
    let put = |key: &str, namespace: &[&str], kind: &str, vectors: Option<Vec<Vec<f32>>>, now: i64| {
        let write = ItemWrite { value: object(json!({"kind": kind, "key": key})), vectors: vectors.map(|vectors| Vectors::new(2, &vectors).expect("vectors")), ttl_minutes: None };
        storage.put_item(namespace.iter().map(|label| (*label).to_string()).collect(), key.to_string(), write, None, now)
    };
    put("best", &["docs", "a"], "a", Some(vec![vec![0.0, 1.0], vec![1.0, 0.0]]), 1).await.unwrap();
    put("tie-old", &["docs", "b"], "a", Some(vec![vec![2.0, 2.0]]), 2).await.unwrap();
    put("tie-new", &["docs"], "b", Some(vec![vec![1.0, 1.0]]), 3).await.unwrap();
    put("far", &["docs", "a"], "a", Some(vec![vec![0.0, 1.0]]), 4).await.unwrap();
    put("unscored", &["docs", "a"], "a", None, 5).await.unwrap();
    put("outside", &["docsx"], "a", Some(vec![vec![1.0, 0.0]]), 6).await.unwrap();
    let docs = vec!["docs".to_string()];
    let rank = |filters: Vec<Map<String, Value>>, page: (usize, usize)| storage.rank_items(docs.clone(), vec![1.0, 0.0], filters, page, 10);
    let keys = |found: Vec<(StoreItem, Option<f64>)>| found.into_iter().map(|(item, score)| (item.key, score.map(|score| (score * 100.0).round() / 100.0))).collect::<Vec<_>>();
    let expected: Vec<(String, Option<f64>)> = [("best", Some(1.0)), ("tie-new", Some(0.71)), ("tie-old", Some(0.71)), ("far", Some(0.0)), ("unscored", None)].iter().map(|(key, score)| ((*key).to_string(), *score)).collect();
    assert_eq!(keys(rank(Vec::new(), (10, 0)).await.unwrap()), expected, "best of an item's vectors; ties newest first; the unscored last; the prefix is whole labels");
    let found = rank(Vec::new(), (1, 0)).await.unwrap();
    assert_eq!((found[0].0.namespace.clone(), found[0].0.value.clone(), found[0].0.created_at), (vec!["docs".to_string(), "a".to_string()], object(json!({"kind": "a", "key": "best"})), 1));
    assert_eq!(keys(rank(Vec::new(), (2, 2)).await.unwrap()), expected[2..4].to_vec());
    assert_eq!(keys(rank(vec![object(json!({"kind": "a"}))], (3, 0)).await.unwrap()).into_iter().map(|(key, _)| key).collect::<Vec<_>>(), ["best", "tie-old", "far"]);
    assert_eq!(keys(rank(vec![object(json!({"kind": "a"})), object(json!({"key": "far"}))], (10, 0)).await.unwrap()).len(), 1, "every filter holds");
    assert!(rank(Vec::new(), (0, 0)).await.unwrap().is_empty() && rank(Vec::new(), (5, 10)).await.unwrap().is_empty());
    put("best", &["docs", "a"], "a", None, 7).await.unwrap();
    storage.delete_item(vec!["docs".to_string(), "b".to_string()], "tie-old".to_string(), None).await.unwrap();
    let expiring = ItemWrite { value: Map::new(), vectors: Some(Vectors::new(2, &[vec![1.0, 0.0]]).expect("vectors")), ttl_minutes: Some(1.0) };
    storage.put_item(docs.clone(), "expired".to_string(), expiring, None, 0).await.unwrap();
    let after = keys(storage.rank_items(docs.clone(), vec![1.0, 0.0], Vec::new(), (10, 0), 60_000_000).await.unwrap());
    assert_eq!(after.into_iter().map(|(key, _)| key).collect::<Vec<_>>(), ["tie-new", "far", "best", "unscored"], "re-put unembedded, deleted, expired");
    let sixty_four = Vectors::new(64, &[vec![0.25; 64]]).expect("vectors");
    storage.put_item(vec!["wide".to_string()], "k".to_string(), ItemWrite { value: Map::new(), vectors: Some(sixty_four), ttl_minutes: None }, None, 1).await.unwrap();
    let wide = storage.rank_items(vec!["wide".to_string()], vec![1.0; 64], Vec::new(), (1, 0), 2).await.unwrap();
    assert!((wide[0].1.expect("scored") - 1.0).abs() < 1e-6, "a 64-dimension blob round-trips");
    assert_eq!(storage.rank_items(vec!["wide".to_string()], vec![1.0; 8], Vec::new(), (1, 0), 2).await.unwrap()[0].1, None, "another length is not scored");
}

/// An item past its `expires_at` is gone at once for every read (get, search, namespaces)
/// and for guards; a refresh restarts its clock from the read; a re-put after expiry starts
/// a new item; a sweep deletes exactly the expired rows.
pub(crate) async fn store_items_expire(storage: &dyn Items) {
    const MINUTE: i64 = 60_000_000;
    let namespace = vec!["tmp".to_string()];
    let expiring = |minutes: f64| ItemWrite { value: object(json!({"owner": "alice"})), vectors: None, ttl_minutes: Some(minutes) };
    storage.put_item(namespace.clone(), "short".to_string(), expiring(1.0), None, 0).await.unwrap();
    storage.put_item(vec!["tmp".to_string(), "sub".to_string()], "short".to_string(), expiring(1.0), None, 0).await.unwrap();
    storage.put_item(namespace.clone(), "long".to_string(), expiring(10.0), None, 0).await.unwrap();
    storage.put_item(namespace.clone(), "forever".to_string(), ItemWrite::value(Map::new()), None, 0).await.unwrap();
    let item = storage.get_item(namespace.clone(), "short".to_string(), MINUTE - 1).await.unwrap().expect("alive just before");
    assert_eq!(item.expires_at, Some(MINUTE));
    assert_eq!(storage.get_item(namespace.clone(), "short".to_string(), MINUTE).await.unwrap(), None, "gone at its expiry");
    assert_eq!(storage.items_under(namespace.clone(), MINUTE).await.unwrap().len(), 2);
    assert_eq!(storage.namespaces(MINUTE).await.unwrap(), [namespace.clone()], "a namespace of expired items only is not listed");
    // A refresh counts from the read, and only for an item that has a ttl and is alive.
    storage.refresh_items(vec![(namespace.clone(), "long".to_string()), (namespace.clone(), "forever".to_string()), (namespace.clone(), "short".to_string())], 5 * MINUTE).await.unwrap();
    assert_eq!(storage.get_item(namespace.clone(), "long".to_string(), 5 * MINUTE).await.unwrap().and_then(|item| item.expires_at), Some(15 * MINUTE));
    assert_eq!(storage.get_item(namespace.clone(), "forever".to_string(), 5 * MINUTE).await.unwrap().and_then(|item| item.expires_at), None);
    assert_eq!(storage.get_item(namespace.clone(), "short".to_string(), 5 * MINUTE).await.unwrap(), None, "an expired item is not revived by a refresh");
    // A guard never sees an expired item: bob may put where alice's item expired.
    let bobs = object(json!({"owner": "bob"}));
    assert!(storage.put_item(namespace.clone(), "short".to_string(), ItemWrite::value(bobs.clone()), Some(bobs), 6 * MINUTE).await.unwrap());
    let renewed = storage.get_item(namespace.clone(), "short".to_string(), 6 * MINUTE).await.unwrap().expect("the new item");
    assert_eq!((renewed.created_at, renewed.expires_at), (6 * MINUTE, None), "a put over an expired item starts a new one");
    // Two sweeps at once (two processes on one Postgres): each row is deleted once.
    let (first, second) = futures_util::future::join(storage.sweep_items(6 * MINUTE), storage.sweep_items(6 * MINUTE)).await;
    assert_eq!(first.unwrap() + second.unwrap(), 1, "only tmp.sub's expired item is deleted, once");
    assert_eq!(storage.sweep_items(6 * MINUTE).await.unwrap(), 0);
    assert_eq!(storage.items_under(Vec::new(), 0).await.unwrap().len(), 3, "the sweep left the live items");
}

/// A deletion answers the runs it removed that were still active (their streams end), and
/// `settle_thread` sets a thread idle only once no run of it is active, keeping its values.
pub(crate) async fn deletions_name_active_runs_and_threads_settle(storage: &dyn Storage) {
    let assistant = Uuid::new_v4();
    let thread = storage.create_thread(thread_of("alice"), IfExists::Raise, None).await.unwrap().thread_id;
    let (done, pending) = (run_on(thread, assistant, 1), run_on(thread, assistant, 2));
    storage.insert_run(done.clone(), Map::new()).await.unwrap();
    storage.insert_run(pending.clone(), Map::new()).await.unwrap();
    storage.claim_next_run(3, LEASE).await.unwrap();
    assert!(storage.finish_run(done.run_id, thread, ME, Some(RunStatus::Success), outcome(json!({"n": 1}), ThreadStatus::Idle), 4).await.unwrap());
    storage.settle_thread(thread, 5).await.unwrap();
    assert_eq!(storage.get_thread(thread, None).await.unwrap().status, ThreadStatus::Busy, "a pending run keeps it busy");
    assert!(storage.end_pending_run(pending.run_id, None, 6).await.unwrap());
    storage.settle_thread(thread, 7).await.unwrap();
    let settled = storage.get_thread(thread, None).await.unwrap();
    assert_eq!((settled.status, settled.values), (ThreadStatus::Idle, Some(json!({"n": 1}))));

    let other = storage.create_thread(thread_of("alice"), IfExists::Raise, None).await.unwrap().thread_id;
    let (finished, active) = (run_on(other, assistant, 10), run_on(other, assistant, 11));
    storage.insert_run(finished.clone(), Map::new()).await.unwrap();
    assert_eq!(storage.claim_next_run(12, LEASE).await.unwrap().map(|run| run.run_id), Some(finished.run_id));
    assert!(storage.end_claimed_run(finished.run_id, ME, Some(RunStatus::Interrupted), 13).await.unwrap());
    storage.insert_run(active.clone(), Map::new()).await.unwrap();
    let deleted = storage.delete_threads(vec![(other, None), (thread, Some(owner("bob")))], Hidden::Skip).await.unwrap();
    assert_eq!(deleted, DeletedThreads { thread_ids: vec![other], active_runs: vec![active.run_id] });
}

/// A claim is held by its owner: only the owner finishes, releases or ends the run; renewals
/// touch the owner's runs; recovery as a new process ends the runs it does not hold, never
/// its own, and the old owner's late finish then changes nothing (fencing).
pub(crate) async fn claims_fence_their_owner(storage: &dyn Storage) {
    let other = Uuid::from_u128(8);
    let thread = storage.create_thread(thread_of("alice"), IfExists::Raise, None).await.unwrap().thread_id;
    let (first, second) = (run_on(thread, Uuid::new_v4(), 1), run_on(thread, Uuid::new_v4(), 2));
    storage.insert_run(first.clone(), Map::new()).await.unwrap();
    storage.insert_run(second.clone(), Map::new()).await.unwrap();
    assert_eq!(storage.claim_next_run(3, LEASE).await.unwrap().map(|run| run.run_id), Some(first.run_id));
    assert!(!storage.release_run(first.run_id, other, 4).await.unwrap(), "only the owner gives a run back");
    assert!(!storage.end_claimed_run(first.run_id, other, None, 4).await.unwrap(), "only the owner ends it");
    assert_eq!(storage.renew_leases(other, 2_000_000).await.unwrap(), 0);
    assert_eq!(storage.renew_leases(ME, 2_000_000).await.unwrap(), 1);
    assert!(storage.release_run(first.run_id, ME, 5).await.unwrap());
    assert_eq!(storage.get_run(thread, first.run_id).await.unwrap().status, RunStatus::Pending, "given back, it waits again");
    assert_eq!(storage.claim_next_run(6, LEASE).await.unwrap().map(|run| run.run_id), Some(first.run_id), "and is the next claimed");

    assert_eq!(storage.recover_interrupted_runs(ME, 7).await.unwrap(), 0, "a process never recovers its own runs");
    // Past the (renewed) lease, as another process: ended, whichever rule the backend keeps.
    assert_eq!(storage.recover_interrupted_runs(other, 3_000_000).await.unwrap(), 1);
    assert_eq!(storage.get_run(thread, first.run_id).await.unwrap().status, RunStatus::Error);
    let late = outcome(json!({"stale": true}), ThreadStatus::Idle);
    assert!(!storage.finish_run(first.run_id, thread, ME, Some(RunStatus::Success), late, 9).await.unwrap(), "a claim lost is a write refused");
    assert_eq!(storage.get_run(thread, first.run_id).await.unwrap().status, RunStatus::Error);
    assert_eq!(storage.get_thread(thread, None).await.unwrap().values, None);
}

/// Auth filters compiled into a backend's queries select exactly the rows the evaluator
/// (`Filter::matches`, Python equality) accepts.
pub(crate) async fn compiled_filters_agree_with_the_evaluator(storage: &dyn Threads) {
    let rows = [
        json!({"owner": "a"}),
        json!({"owner": "b", "shared": true}),
        json!({"owner": "a", "n": 5.0, "members": ["u1", "u2"]}),
        json!({"n": 1, "members": "u1", "d": {"x": 1}}),
        json!({"members": [], "l": [1, [2, 3]]}),
        json!({}),
    ];
    let mut ids = Vec::new();
    for metadata in &rows {
        ids.push(storage.create_thread(Thread { metadata: object(metadata.clone()), ..thread_of("x") }, IfExists::Raise, None).await.unwrap().thread_id);
    }
    let filters = [
        json!({"owner": "a"}),
        json!({"n": 5}),
        json!({"n": true}),
        json!({"shared": 1}),
        json!({"members": {"$contains": "u1"}}),
        json!({"members": {"$contains": ["u2", "u1"]}}),
        json!({"members": {"$contains": []}}),
        json!({"l": {"$contains": [[2, 3]]}}),
        json!({"d": {"$eq": {"x": 1.0}}}),
        json!({"$or": [{"owner": "b"}, {"n": 1}]}),
        json!({"$and": [{"owner": "a"}, {"$or": [{"n": 5}, {"members": {"$contains": "zz"}}]}]}),
        json!({}),
    ];
    for filter_json in filters {
        let filter = Filter::parse(&filter_json).expect("filter");
        let mut expected: Vec<Uuid> = rows.iter().zip(&ids).filter(|(metadata, _)| filter.matches(metadata.as_object().expect("object"))).map(|(_, id)| *id).collect();
        let query = ThreadQuery { auth: Some(filter), ..ThreadQuery::default() };
        let mut found: Vec<Uuid> = storage.search_threads(query, ThreadSortBy::CreatedAt, SortOrder::Asc, 100, 0).await.unwrap().into_iter().map(|thread| thread.thread_id).collect();
        found.sort();
        expected.sort();
        assert_eq!(found, expected, "{filter_json}");
    }
}

/// Metadata containment (nested objects, lists whole, `null` never matching a missing key)
/// and paging by a sort column.
pub(crate) async fn containment_and_paging(storage: &dyn Threads) {
    for index in 0..5 {
        let row = Thread { metadata: object(json!({"i": index, "nested": {"a": index % 2, "b": "x"}, "tags": ["t"]})), updated_at: index, ..thread_of("x") };
        storage.create_thread(row, IfExists::Raise, None).await.unwrap();
    }
    for (metadata, expected) in [
        (json!({}), 5),
        (json!({"i": 3}), 1),
        (json!({"i": 3.0}), 1),
        (json!({"nested": {"a": 1}}), 2),
        (json!({"nested": {}}), 5),
        (json!({"tags": ["t"]}), 5),
        (json!({"tags": []}), 0),
        (json!({"missing": null}), 0),
    ] {
        let query = ThreadQuery { metadata: metadata.as_object().cloned(), ..ThreadQuery::default() };
        assert_eq!(storage.count_threads(query).await.unwrap(), expected, "{metadata}");
    }
    let page = storage.search_threads(ThreadQuery::default(), ThreadSortBy::UpdatedAt, SortOrder::Desc, 2, 1).await.unwrap();
    assert_eq!(page.iter().map(|thread| thread.updated_at).collect::<Vec<_>>(), vec![3, 2]);
}

/// Expired threads are claimed once per activity, soonest first, never busy ones; a patch
/// (activity) or a release makes them claimable again; a TTL round-trips; a hidden thread's
/// TTL cannot be changed.
pub(crate) async fn expired_threads_are_claimed_once(storage: &dyn Threads) {
    const MINUTE: i64 = 60_000_000;
    let ttl = |strategy, minutes| Some(ThreadTtl { strategy, minutes });
    let with = |ttl: Option<ThreadTtl>, updated_at: i64, status: ThreadStatus| Thread { ttl, updated_at, status, ..thread_of("alice") };
    let later = storage.create_thread(with(ttl(TtlStrategy::Delete, 2.0), 1, ThreadStatus::Idle), IfExists::Raise, None).await.unwrap();
    let sooner = storage.create_thread(with(ttl(TtlStrategy::KeepLatest, 0.5), 1, ThreadStatus::Idle), IfExists::Raise, None).await.unwrap();
    storage.create_thread(with(None, 1, ThreadStatus::Idle), IfExists::Raise, None).await.unwrap();
    storage.create_thread(with(ttl(TtlStrategy::Delete, 0.5), 1, ThreadStatus::Busy), IfExists::Raise, None).await.unwrap();
    assert_eq!(storage.get_thread(sooner.thread_id, None).await.unwrap().ttl, ttl(TtlStrategy::KeepLatest, 0.5));

    assert!(storage.claim_expired_threads(MINUTE / 2, 10).await.unwrap().is_empty(), "not expired yet");
    let claim = |now, limit| storage.claim_expired_threads(now, limit);
    assert_eq!(claim(3 * MINUTE, 1).await.unwrap(), vec![ExpiredThread { thread_id: sooner.thread_id, strategy: TtlStrategy::KeepLatest }]);
    assert_eq!(claim(3 * MINUTE, 10).await.unwrap(), vec![ExpiredThread { thread_id: later.thread_id, strategy: TtlStrategy::Delete }]);
    assert!(claim(3 * MINUTE, 10).await.unwrap().is_empty(), "each claimed once");

    storage.release_expired_threads(vec![later.thread_id]).await.unwrap();
    assert_eq!(claim(3 * MINUTE, 10).await.unwrap().len(), 1, "a released claim is claimed again");

    // Activity restarts the TTL: claimable again only once it has run out again.
    let patched = storage.patch_thread(sooner.thread_id, Map::new(), ttl(TtlStrategy::Delete, 1.0), None, 4 * MINUTE).await.unwrap();
    assert_eq!(patched.ttl, ttl(TtlStrategy::Delete, 1.0));
    assert!(claim(4 * MINUTE + MINUTE / 2, 10).await.unwrap().is_empty());
    assert_eq!(claim(5 * MINUTE, 10).await.unwrap(), vec![ExpiredThread { thread_id: sooner.thread_id, strategy: TtlStrategy::Delete }]);

    // A patch without a TTL keeps the thread's; another user's patch changes nothing.
    assert_eq!(storage.patch_thread(sooner.thread_id, Map::new(), None, None, 6 * MINUTE).await.unwrap().ttl, ttl(TtlStrategy::Delete, 1.0));
    let hidden = storage.patch_thread(sooner.thread_id, Map::new(), ttl(TtlStrategy::KeepLatest, 9.0), Some(owner("bob")), 7 * MINUTE).await;
    assert_eq!(hidden.map(drop), Err(StorageError::NotFound));
    assert_eq!(storage.get_thread(sooner.thread_id, None).await.unwrap().ttl, ttl(TtlStrategy::Delete, 1.0));
}

/// Generates one `#[test]` per conformance case, each on a fresh storage from `$make`.
macro_rules! conformance_suite {
    ($make:expr) => {
        $crate::storage::conformance::conformance_suite!(@cases $make;
            filters_hide_threads thread_deletion_is_all_or_nothing thread_deletion_cascades
            one_running_run_per_thread scheduled_runs_wait_for_their_time run_ends_are_conditional
            interrupted_runs_are_recovered assistant_deletion_is_all_or_nothing
            crons_come_due_and_move_on store_writes_are_guarded store_queries_rank_by_vectors store_items_expire deletions_name_active_runs_and_threads_settle
            claims_fence_their_owner compiled_filters_agree_with_the_evaluator containment_and_paging
            expired_threads_are_claimed_once);
    };
    (@cases $make:expr; $($case:ident)*) => {
        $(
            #[test]
            fn $case() {
                let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a runtime");
                // `$make` may await (a backend that connects).
                runtime.block_on(async {
                    let storage = $make;
                    $crate::storage::conformance::$case(&storage).await;
                });
            }
        )*
    };
}
pub(crate) use conformance_suite;
