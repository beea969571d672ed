//! How a flow on a ring ends: the receive of the receiver's end request, armed once the
//! window is over, and its cancellation when the request never comes. A leaf below the flow.

use super::completion::{Op, Tag};
use crate::error::{Error, Result};
use crate::sock;
use io_uring::{opcode, squeue, types};
use std::io;

/// Where the receive of a flow's end request stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum EndRecv {
    /// Not submitted: the window is not over yet.
    Unarmed,
    /// In flight: the kernel may still write the flow's end byte, which must outlive it.
    InFlight,
    /// The receiver asked for the end frame.
    Asked,
    /// Completed without a request (cancelled, or the flow failed on it).
    Over,
}

/// The receive of a flow's end request: the byte it lands in (boxed: the kernel writes it
/// while in flight) and where it stands.
pub(super) struct EndRequest {
    byte: Box<[u8; 1]>,
    state: EndRecv,
}

impl EndRequest {
    pub(super) fn new() -> EndRequest {
        EndRequest {
            byte: Box::new([0]),
            state: EndRecv::Unarmed,
        }
    }

    /// Where the receive stands.
    pub(super) fn state(&self) -> EndRecv {
        self.state
    }

    /// The receive for flow `li` of the ring, if it was not armed yet. It is armed only once
    /// the window is over (the request comes after the receiver's window; if it came first it
    /// waits in the socket): a receive waiting on the socket is woken by every error-queue
    /// entry, and with `--timestamps` each TX stamp woke this thread (thousands of context
    /// switches a second, a third of A1's throughput).
    pub(super) fn arm(&mut self, li: usize) -> Option<squeue::Entry> {
        if self.state != EndRecv::Unarmed {
            return None;
        }
        self.state = EndRecv::InFlight;
        Some(
            opcode::Recv::new(types::Fixed(li as u32), self.byte.as_mut_ptr(), 1)
                .build()
                .user_data(Tag::of(li, Op::EndRecv).encode()),
        )
    }

    /// The cancellation of flow `li`'s receive, if it is in flight (a flow that failed before
    /// the request came), so that the byte it would write can be freed.
    pub(super) fn cancel(&self, li: usize) -> Option<squeue::Entry> {
        (self.state == EndRecv::InFlight).then(|| {
            opcode::AsyncCancel::new(Tag::of(li, Op::EndRecv).encode())
                .build()
                .user_data(Tag::of(li, Op::CancelEnd).encode())
        })
    }

    /// The receive completed with `res` (on flow `flow`): the request, or why the flow fails.
    pub(super) fn on_recv(&mut self, res: i32, flow: u32) -> Result<()> {
        self.state = EndRecv::Over;
        match res {
            1 if self.byte[0] == crate::wire::END_REQUEST => {
                self.state = EndRecv::Asked;
                Ok(())
            }
            1 => Err(Error::Protocol(format!(
                "the receiver of flow {flow} sent byte {:#04x} where only the end request may come",
                self.byte[0]
            ))),
            0 => Err(Error::PeerClosed(format!(
                "the receiver of flow {flow} closed the connection before asking for the end frame"
            ))),
            r if r == -libc::ECANCELED => Ok(()),
            r => Err(sock::classify(
                io::Error::from_raw_os_error(-r),
                "io_uring recv of the end request",
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_end_receive_is_armed_once_cancelled_only_in_flight_and_reads_its_byte() {
        let mut end = EndRequest::new();
        assert!(end.cancel(0).is_none(), "nothing in flight to cancel");
        let armed = end.arm(2).expect("armed once the window is over");
        assert_eq!(Tag::decode(armed.get_user_data()), Tag::of(2, Op::EndRecv));
        assert!(end.arm(2).is_none(), "never armed twice");
        let cancel = end.cancel(2).expect("in flight: cancellable");
        assert_eq!(
            Tag::decode(cancel.get_user_data()),
            Tag::of(2, Op::CancelEnd)
        );

        end.byte[0] = crate::wire::END_REQUEST;
        end.on_recv(1, 2).unwrap();
        assert_eq!(end.state(), EndRecv::Asked);

        let mut end = EndRequest::new();
        end.arm(0);
        end.byte[0] = b'x';
        let e = end.on_recv(1, 0).unwrap_err();
        assert!(matches!(e, Error::Protocol(_)), "{e}");
        assert_eq!(end.state(), EndRecv::Over);
        assert!(matches!(
            EndRequest::new().on_recv(0, 0),
            Err(Error::PeerClosed(_))
        ));
        let mut end = EndRequest::new();
        end.arm(0);
        end.on_recv(-libc::ECANCELED, 0).unwrap();
        assert_eq!(end.state(), EndRecv::Over);
        assert!(end.cancel(0).is_none());
    }
}
