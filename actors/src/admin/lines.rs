//! Reading admin request lines with bounded time and memory.
//!
//! - **Time.** A connection that sends nothing for the idle timeout is done, and so is one
//!   that starts a line and does not finish it within [`LINE_TIMEOUT`] (the spec's framing
//!   rules), so silent or trickling clients cannot hold connections for ever.
//! - **Memory.** Each connection reads through a small buffer ([`READ_BUFFER`]) and may hold
//!   a line of up to [`OWN_LINE_BYTES`] on its own: every valid request fits. A longer line
//!   (up to the protocol's 64 KiB) draws its room from one budget shared by all connections
//!   ([`LONG_LINE_BUDGET`]); when the budget is spent, a connection waits for room (its bytes
//!   wait in the kernel, the client is slowed down by TCP) until others finish or time out.
//!   The room goes back, and a long line's buffer is freed, as soon as the line has been
//!   parsed. So however many clients send half-finished 64 KiB lines, the node holds at most
//!   the budget for them, plus a little per connection, and frees all of it when they close
//!   (the allocator may keep the freed pages for reuse, which the same bound then covers).

use std::io;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::{timeout, timeout_at, Instant};

use crate::admin::protocol::MAX_LINE;

/// How long a client may take to finish a line it has started (`spec/admin-protocol.md`).
pub const LINE_TIMEOUT: Duration = Duration::from_secs(10);

/// Bytes read from the socket at a time: each connection keeps one such buffer.
pub const READ_BUFFER: usize = 512;

/// Bytes of one line a connection may hold without drawing on the shared budget: every
/// valid request written with single spaces fits (the longest, a `SUBMIT` of a
/// transaction's hex, is about 320 bytes),
/// so no client's valid request ever waits on the budget, however others use it.
pub const OWN_LINE_BYTES: usize = 512;

/// Bytes of lines longer than [`OWN_LINE_BYTES`] that all connections together may hold at
/// once: room for 32 maximal lines, though no valid request needs any of it.
pub const LONG_LINE_BUDGET: usize = 2 * 1024 * 1024;

/// The budget is counted in units of this many bytes (one semaphore permit each).
const BUDGET_UNIT: usize = 1024;

/// The shared room for long lines (see the module documentation).
pub fn long_line_budget() -> Arc<Semaphore> {
    Arc::new(Semaphore::new(LONG_LINE_BUDGET / BUDGET_UNIT))
}

/// What reading the next line gave.
#[derive(Debug, PartialEq, Eq)]
pub enum Next<T> {
    /// A line (without its `\n`), as the caller's parser made it.
    Line(T),
    /// The line is longer than [`MAX_LINE`]: the caller answers `too_long` and closes.
    TooLong,
    /// The client closed its side.
    End,
    /// Nothing came for the idle timeout.
    Idle,
    /// A line was started but not finished within [`LINE_TIMEOUT`].
    Slow,
}

/// What reading the rest of a started line gave.
enum Rest {
    Line,
    TooLong,
}

/// Reads request lines from one connection (see the module documentation).
pub struct LineReader<R> {
    reader: BufReader<R>,
    /// The line being read. Its capacity beyond [`OWN_LINE_BYTES`] is covered by `grant`.
    line: Vec<u8>,
    /// Units of the shared budget this connection holds for `line`.
    grant: Option<OwnedSemaphorePermit>,
    budget: Arc<Semaphore>,
}

impl<R: AsyncRead + Unpin> LineReader<R> {
    /// A reader of `source` that draws room for long lines from `budget`.
    pub fn new(source: R, budget: Arc<Semaphore>) -> LineReader<R> {
        LineReader {
            reader: BufReader::with_capacity(READ_BUFFER, source),
            line: Vec::new(),
            grant: None,
            budget,
        }
    }

    /// Waits up to `idle` for a line to start and up to [`LINE_TIMEOUT`] more for it to
    /// end, then hands it to `parse` and frees what a long line took before returning.
    /// A last line without its `\n` (the client closed after it) is a line too.
    ///
    /// Dropping the returned future loses nothing: a line started stays, and the next call
    /// goes on with it (its time limits start again).
    pub async fn next_line<T>(
        &mut self,
        idle: Duration,
        parse: impl FnOnce(&[u8]) -> T,
    ) -> io::Result<Next<T>> {
        match timeout(idle, self.reader.fill_buf()).await {
            Err(_) => return Ok(Next::Idle),
            Ok(Err(e)) => return Err(e),
            Ok(Ok([])) if self.line.is_empty() => return Ok(Next::End),
            Ok(Ok(_)) => {}
        }
        let rest = timeout_at(Instant::now() + LINE_TIMEOUT, self.read_rest()).await;
        let next = match rest {
            Err(_) => Next::Slow,
            Ok(Err(e)) => Err(e)?,
            Ok(Ok(Rest::TooLong)) => Next::TooLong,
            Ok(Ok(Rest::Line)) => Next::Line(parse(&self.line)),
        };
        self.release();
        Ok(next)
    }

    /// Reads until the end of the line (or of the input) into `self.line`.
    async fn read_rest(&mut self) -> io::Result<Rest> {
        loop {
            let available = self.reader.fill_buf().await?;
            if available.is_empty() {
                return Ok(Rest::Line);
            }
            let newline = available.iter().position(|&b| b == b'\n');
            let take = newline.unwrap_or(available.len());
            let length = self.line.len() + take;
            if length > MAX_LINE {
                return Ok(Rest::TooLong);
            }
            self.make_room(length).await?;
            self.line.extend_from_slice(&self.reader.buffer()[..take]);
            self.reader.consume(take);
            if newline.is_some() {
                self.reader.consume(1);
                return Ok(Rest::Line);
            }
        }
    }

    /// Grows `self.line` to hold `length` bytes, first taking from the shared budget what
    /// the new capacity needs beyond [`OWN_LINE_BYTES`] (waiting for it if need be).
    async fn make_room(&mut self, length: usize) -> io::Result<()> {
        if length <= self.line.capacity() {
            return Ok(());
        }
        // At first the connection's own allowance, in one piece (every connection's is the
        // same size, so a freed one is reused as it is); then doubling, so a long line is
        // copied a few times, not once per read; never past MAX_LINE, which `length` never
        // exceeds.
        let capacity = (self.line.capacity() * 2)
            .clamp(OWN_LINE_BYTES, MAX_LINE)
            .max(length);
        let units = units_for(capacity);
        let held = self.grant.as_ref().map_or(0, |g| g.num_permits());
        if units > held {
            let more = u32::try_from(units - held).map_err(io::Error::other)?;
            let granted = Arc::clone(&self.budget)
                .acquire_many_owned(more)
                .await
                .map_err(io::Error::other)?;
            match &mut self.grant {
                Some(grant) => grant.merge(granted),
                None => self.grant = Some(granted),
            }
        }
        self.line.reserve_exact(capacity - self.line.len());
        Ok(())
    }

    /// Forgets the line read; a buffer that grew past [`OWN_LINE_BYTES`] is freed and its
    /// budget returned.
    fn release(&mut self) {
        if self.line.capacity() > OWN_LINE_BYTES {
            self.line = Vec::new();
        } else {
            self.line.clear();
        }
        self.grant = None;
    }
}

/// Budget units a line buffer of `capacity` bytes holds.
fn units_for(capacity: usize) -> usize {
    capacity
        .saturating_sub(OWN_LINE_BYTES)
        .div_ceil(BUDGET_UNIT)
}

#[cfg(test)]
mod tests {
    use tokio::io::AsyncWriteExt;

    use super::*;

    const IDLE: Duration = Duration::from_secs(300);

    fn text(line: &[u8]) -> String {
        String::from_utf8_lossy(line).into_owned()
    }

    #[tokio::test]
    async fn lines_end_at_newlines_and_at_the_end_of_input() {
        let input: &[u8] = b"PING\r\n\nSTATUS\nlast";
        let mut reader = LineReader::new(input, long_line_budget());
        for expected in ["PING\r", "", "STATUS", "last"] {
            let next = reader.next_line(IDLE, text).await.unwrap();
            assert_eq!(next, Next::Line(expected.to_string()));
        }
        assert_eq!(reader.next_line(IDLE, text).await.unwrap(), Next::End);
    }

    #[tokio::test]
    async fn a_line_over_the_limit_is_too_long() {
        let mut input = vec![b'a'; MAX_LINE];
        input.extend_from_slice(b"\nb\n");
        let mut reader = LineReader::new(&input[..], long_line_budget());
        let next = reader.next_line(IDLE, <[u8]>::len).await.unwrap();
        assert_eq!(next, Next::Line(MAX_LINE));
        let next = reader.next_line(IDLE, text).await.unwrap();
        assert_eq!(next, Next::Line("b".to_string()));
        let mut input = vec![b'a'; MAX_LINE + 1];
        input.push(b'\n');
        let mut reader = LineReader::new(&input[..], long_line_budget());
        let next = reader.next_line(IDLE, <[u8]>::len).await.unwrap();
        assert_eq!(next, Next::TooLong);
    }

    /// A long line takes from the budget while it is read and gives everything back, its
    /// buffer included, once parsed; short lines never touch the budget.
    #[tokio::test]
    async fn long_lines_borrow_the_budget_and_return_it() {
        let budget = long_line_budget();
        let all = budget.available_permits();
        let mut input = vec![b'x'; 60_000];
        input.extend_from_slice(b"\nPING\n");
        let mut reader = LineReader::new(&input[..], Arc::clone(&budget));
        let during = reader
            .next_line(IDLE, |_| budget.available_permits())
            .await
            .unwrap();
        assert_eq!(during, Next::Line(all - units_for(MAX_LINE)));
        assert_eq!(budget.available_permits(), all);
        assert_eq!(reader.line.capacity(), 0);
        let next = reader
            .next_line(IDLE, |line| (text(line), budget.available_permits()))
            .await
            .unwrap();
        assert_eq!(next, Next::Line(("PING".to_string(), all)));
        assert!(reader.line.capacity() <= OWN_LINE_BYTES);
    }

    /// With the budget spent, a long line waits (here until its line timeout) rather than
    /// growing the node's memory, and gives back what it held; a short line on another
    /// connection is read meanwhile.
    #[tokio::test(start_paused = true)]
    async fn a_spent_budget_holds_long_lines_back() {
        let budget = Arc::new(Semaphore::new(4));
        let (mut client, server) = tokio::io::duplex(64 * 1024);
        client.write_all(&[b'y'; 8 * 1024]).await.unwrap();
        let mut reader = LineReader::new(server, Arc::clone(&budget));
        let started = Instant::now();
        let next = reader.next_line(IDLE, <[u8]>::len).await.unwrap();
        assert_eq!(next, Next::Slow);
        assert_eq!(started.elapsed(), LINE_TIMEOUT);
        assert_eq!(budget.available_permits(), 4);
        let short: &[u8] = b"PING\n";
        let mut other = LineReader::new(short, Arc::clone(&budget));
        let next = other.next_line(IDLE, text).await.unwrap();
        assert_eq!(next, Next::Line("PING".to_string()));
    }

    #[tokio::test(start_paused = true)]
    async fn silence_is_idle_and_an_unfinished_line_is_slow() {
        let (_quiet, server) = tokio::io::duplex(1024);
        let mut reader = LineReader::new(server, long_line_budget());
        let idle = Duration::from_secs(7);
        let started = Instant::now();
        assert_eq!(reader.next_line(idle, text).await.unwrap(), Next::Idle);
        assert_eq!(started.elapsed(), idle);

        let (mut client, server) = tokio::io::duplex(1024);
        client.write_all(b"PI").await.unwrap();
        let mut reader = LineReader::new(server, long_line_budget());
        let started = Instant::now();
        assert_eq!(reader.next_line(IDLE, text).await.unwrap(), Next::Slow);
        assert_eq!(started.elapsed(), LINE_TIMEOUT);
    }
}
