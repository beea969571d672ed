//! One flow's receive as every receiver runs it.

use super::options::RecvOptions;
use super::tally::Tally;
use crate::results::FlowResult;
use crate::window::WindowTracker;
use crate::wire::Hello;
use std::net::TcpStream;

/// One flow's receive: the connection, what its hello announced, the receiver's options, its
/// window, and what it records (the flow's result and the tally of its messages).
pub struct Rx<'a> {
    /// The connection.
    pub stream: &'a TcpStream,
    /// What the sender announced.
    pub hello: &'a Hello,
    /// How this receiver reads.
    pub opts: &'a RecvOptions,
    /// The measured window and the receiving thread's counters.
    pub w: &'a mut WindowTracker,
    /// The flow's result.
    pub r: &'a mut FlowResult,
    /// Sequence and latency accounting of its messages.
    pub tally: &'a mut Tally,
}

impl<'a> Rx<'a> {
    /// The receive of a flow.
    pub fn new(
        stream: &'a TcpStream,
        hello: &'a Hello,
        opts: &'a RecvOptions,
        w: &'a mut WindowTracker,
        r: &'a mut FlowResult,
        tally: &'a mut Tally,
    ) -> Rx<'a> {
        Rx {
            stream,
            hello,
            opts,
            w,
            r,
            tally,
        }
    }

    /// Its parts, for a receiver's loop.
    #[allow(clippy::type_complexity)]
    pub fn parts(
        self,
    ) -> (
        &'a TcpStream,
        &'a Hello,
        &'a RecvOptions,
        &'a mut WindowTracker,
        &'a mut FlowResult,
        &'a mut Tally,
    ) {
        (
            self.stream,
            self.hello,
            self.opts,
            self.w,
            self.r,
            self.tally,
        )
    }
}
