//! Password hashing on a bounded pool. argon2id is slow and memory-hard on purpose (~19 MiB,
//! tens of milliseconds per hash), which makes every sign-in, sign-up and client
//! authentication an amplifier: an unbounded number of them at once costs an unbounded amount
//! of memory. So hashing runs on a fixed number of dedicated threads (one per core), each
//! reusing one memory block for every hash it computes; a burst costs at most `threads` blocks
//! and gives nothing back to fragment, and requests beyond the pool's queue wait briefly, then
//! get [`HashError::Busy`] (503 with `Retry-After`).
//!
//! Hashes are argon2id PHC strings with argon2's default (OWASP) cost, compatible with the
//! `argon2` crate's own `PasswordHasher`/`PasswordVerifier`, so hashes stored before the pool
//! existed verify unchanged.

use std::sync::{Arc, Mutex, mpsc};
use std::time::Duration;

use argon2::password_hash::{Output, PasswordHash, SaltString};
use argon2::{Algorithm, Argon2, Block, Params, Version};
use tokio::sync::{Semaphore, oneshot};

use crate::crypto;

/// How long a request waits for a place in the queue before it is told to come back.
const QUEUE_WAIT: Duration = Duration::from_secs(2);
/// Jobs that may wait per hashing thread, besides the one it runs.
const QUEUE_PER_THREAD: usize = 8;

#[derive(Debug, thiserror::Error)]
pub enum HashError {
    /// Every hashing thread is busy and the queue is full: try again in a moment.
    #[error("too many sign-ins at once; try again in a second")]
    Busy,
    #[error("password hashing failed: {0}")]
    Failed(String),
}

/// A cheap-clone handle to the pool. The threads stop when the last handle is dropped.
#[derive(Clone)]
pub struct Hasher {
    jobs: mpsc::SyncSender<Job>,
    /// Places in the pool (running or queued); taken before a job is sent, so the channel
    /// never blocks the async caller.
    places: Arc<Semaphore>,
}

impl std::fmt::Debug for Hasher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hasher").field("free_places", &self.places.available_permits()).finish()
    }
}

enum Work {
    Hash { password: String },
    Verify { password: String, phc: String },
}

struct Job {
    work: Work,
    answer: oneshot::Sender<Result<Answer, HashError>>,
}

enum Answer {
    Hashed(String),
    Verified(bool),
}

impl Hasher {
    /// Starts `threads` hashing threads (at least one).
    pub fn start(threads: usize) -> Result<Hasher, HashError> {
        let threads = threads.max(1);
        let places = threads * (1 + QUEUE_PER_THREAD);
        let (jobs, queue) = mpsc::sync_channel::<Job>(places);
        let queue = Arc::new(Mutex::new(queue));
        for index in 0..threads {
            let queue = queue.clone();
            std::thread::Builder::new()
                .name(format!("wsgate-hash-{index}"))
                .spawn(move || work(&queue))
                .map_err(|err| HashError::Failed(format!("cannot start a hashing thread: {err}")))?;
        }
        Ok(Hasher { jobs, places: Arc::new(Semaphore::new(places)) })
    }

    /// One thread per core the process may use.
    pub fn per_core() -> Result<Hasher, HashError> {
        Hasher::start(std::thread::available_parallelism().map_or(1, std::num::NonZero::get))
    }

    /// An argon2id PHC string for `password`.
    pub async fn hash(&self, password: String) -> Result<String, HashError> {
        match self.run(Work::Hash { password }).await? {
            Answer::Hashed(phc) => Ok(phc),
            Answer::Verified(_) => Err(HashError::Failed("the pool answered a verification".into())),
        }
    }

    /// Whether `password` matches the PHC string `phc`. A malformed hash matches nothing.
    pub async fn verify(&self, password: String, phc: String) -> Result<bool, HashError> {
        match self.run(Work::Verify { password, phc }).await? {
            Answer::Verified(matches) => Ok(matches),
            Answer::Hashed(_) => Err(HashError::Failed("the pool answered a hash".into())),
        }
    }

    async fn run(&self, work: Work) -> Result<Answer, HashError> {
        let place = tokio::time::timeout(QUEUE_WAIT, self.places.clone().acquire_owned())
            .await
            .map_err(|_| HashError::Busy)?
            .map_err(|_| HashError::Busy)?;
        let (answer, answered) = oneshot::channel();
        // A place was free, so the channel has room: this never blocks.
        self.jobs.try_send(Job { work, answer }).map_err(|_| HashError::Busy)?;
        let result = answered.await.map_err(|_| HashError::Failed("a hashing thread stopped".into()))?;
        drop(place);
        result
    }
}

/// A hashing thread: takes jobs until every handle is gone, with one memory block for all.
fn work(queue: &Mutex<mpsc::Receiver<Job>>) {
    let mut memory: Vec<Block> = Vec::new();
    loop {
        let job = {
            let queue = queue.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            match queue.recv() {
                Ok(job) => job,
                Err(_) => return,
            }
        };
        let result = match job.work {
            Work::Hash { password } => hash(&password, &mut memory).map(Answer::Hashed),
            Work::Verify { password, phc } => Ok(Answer::Verified(verify(&password, &phc, &mut memory))),
        };
        let _ = job.answer.send(result);
    }
}

/// `memory` grown (never shrunk) to what `params` needs.
fn blocks<'m>(memory: &'m mut Vec<Block>, params: &Params) -> &'m mut [Block] {
    if memory.len() < params.block_count() {
        memory.resize(params.block_count(), Block::default());
    }
    &mut memory[..params.block_count()]
}

fn hash(password: &str, memory: &mut Vec<Block>) -> Result<String, HashError> {
    let failed = |err: &dyn std::fmt::Display| HashError::Failed(err.to_string());
    let salt_bytes = crypto::random::<16>().map_err(|err| failed(&err))?;
    let salt = SaltString::encode_b64(&salt_bytes).map_err(|err| failed(&err))?;
    let params = Params::default();
    let mut out = [0u8; Params::DEFAULT_OUTPUT_LEN];
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone())
        .hash_password_into_with_memory(password.as_bytes(), &salt_bytes, &mut out, blocks(memory, &params))
        .map_err(|err| failed(&err))?;
    let phc = PasswordHash {
        algorithm: argon2::ARGON2ID_IDENT,
        version: Some(Version::V0x13.into()),
        params: (&params).try_into().map_err(|err| failed(&err))?,
        salt: Some(salt.as_salt()),
        hash: Some(Output::new(&out).map_err(|err| failed(&err))?),
    };
    Ok(phc.to_string())
}

/// The hash is recomputed with the stored parameters and compared in constant time (`Output`'s
/// equality). Stored hashes come from this module or the `argon2` crate, so their memory cost
/// is the default; a larger one is honoured, growing this thread's block once.
fn verify(password: &str, phc: &str, memory: &mut Vec<Block>) -> bool {
    let Ok(parsed) = PasswordHash::new(phc) else { return false };
    let (Some(salt), Some(expected)) = (parsed.salt, parsed.hash) else { return false };
    let Ok(algorithm) = Algorithm::try_from(parsed.algorithm) else { return false };
    let version = parsed.version.map_or(Ok(Version::V0x13), Version::try_from);
    // `Params::try_from` also takes the stored hash's length as the output length.
    let (Ok(version), Ok(params)) = (version, Params::try_from(&parsed)) else { return false };
    let mut salt_bytes = [0u8; 64];
    let Ok(salt) = salt.decode_b64(&mut salt_bytes) else { return false };
    let mut out = vec![0u8; expected.len()];
    if Argon2::new(algorithm, version, params.clone())
        .hash_password_into_with_memory(password.as_bytes(), salt, &mut out, blocks(memory, &params))
        .is_err()
    {
        return false;
    }
    Output::new(&out).is_ok_and(|computed| computed == expected)
}

#[cfg(test)]
mod tests {
    use argon2::password_hash::{PasswordHasher, PasswordVerifier};

    use super::*;

    #[tokio::test]
    async fn a_password_verifies_against_its_own_hash_only() {
        let pool = Hasher::start(1).expect("pool");
        let phc = pool.hash("correct horse".into()).await.expect("hash");
        assert!(phc.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{phc}");
        assert!(pool.verify("correct horse".into(), phc.clone()).await.expect("verify"));
        assert!(!pool.verify("wrong".into(), phc.clone()).await.expect("verify"));
        assert!(!pool.verify("x".into(), "not a hash".into()).await.expect("verify"));
        // Hashes made by the argon2 crate itself (before the pool) verify, and the other way round.
        let salt = SaltString::encode_b64(b"0123456789abcdef").expect("salt");
        let old = Argon2::default().hash_password(b"legacy", &salt).expect("hash").to_string();
        assert!(pool.verify("legacy".into(), old).await.expect("verify"));
        let parsed = PasswordHash::new(&phc).expect("parse");
        assert!(Argon2::default().verify_password(b"correct horse", &parsed).is_ok());
    }

    #[tokio::test]
    async fn a_full_pool_answers_busy_instead_of_queueing_forever() {
        let pool = Hasher::start(1).expect("pool");
        let many = (0..(2 + QUEUE_PER_THREAD) * 4).map(|_| {
            let pool = pool.clone();
            tokio::spawn(async move { pool.hash("x".repeat(8)).await })
        });
        let results = futures_results(many).await;
        assert!(results.iter().any(Result::is_ok));
        // Everything either hashed or was told to come back: nothing failed otherwise.
        assert!(results.iter().all(|r| matches!(r, Ok(_) | Err(HashError::Busy))));
    }

    async fn futures_results(
        tasks: impl Iterator<Item = tokio::task::JoinHandle<Result<String, HashError>>>,
    ) -> Vec<Result<String, HashError>> {
        let mut results = Vec::new();
        for task in tasks {
            results.push(task.await.expect("task"));
        }
        results
    }
}
