//! A server-function encoding for Server-Sent Events: the chat's streaming server function
//! answers `text/event-stream` (written by the server's one SSE encoder), and the browser reads
//! it with the engine's one SSE decoder, so that the developer tools show it as an event
//! stream and every door speaks the same framing.

use std::pin::Pin;

use futures::{Stream, StreamExt};
use http::Method;
use leptos::server_fn::codec::{Encoding, FromRes, IntoRes};
use leptos::server_fn::error::{FromServerFnError, ServerFnErrorErr};
use leptos::server_fn::response::{ClientRes, TryRes};
use leptos::server_fn::{Bytes, ContentType, ServerFnError};

/// The encoding: `text/event-stream`, answered to a POST.
pub struct EventStream;

impl ContentType for EventStream {
    const CONTENT_TYPE: &'static str = "text/event-stream";
}

impl Encoding for EventStream {
    const METHOD: Method = Method::POST;
}

/// The body of an event stream: the server sends encoded events; the browser reads bytes.
pub struct Events(Pin<Box<dyn Stream<Item = Result<Bytes, ServerFnError>> + Send>>);

impl Events {
    /// Events already written as SSE text.
    pub fn new(events: impl Stream<Item = String> + Send + 'static) -> Self {
        Self(Box::pin(events.map(|event| Ok(Bytes::from(event)))))
    }

    /// The body's bytes, as they arrive.
    pub fn into_inner(self) -> impl Stream<Item = Result<Bytes, ServerFnError>> {
        self.0
    }
}

impl<E, Response> IntoRes<EventStream, Response, E> for Events
where
    Response: TryRes<E>,
    E: FromServerFnError,
{
    async fn into_res(self) -> Result<Response, E> {
        Response::try_from_stream(
            EventStream::CONTENT_TYPE,
            self.0.map(|chunk| {
                chunk.map_err(|err| {
                    E::from_server_fn_error(ServerFnErrorErr::Response(err.to_string())).ser()
                })
            }),
        )
    }
}

impl<E, Response> FromRes<EventStream, Response, E> for Events
where
    Response: ClientRes<E> + Send,
    E: FromServerFnError,
{
    async fn from_res(res: Response) -> Result<Self, E> {
        let stream = res.try_into_stream()?;
        Ok(Events(Box::pin(stream.map(|chunk| {
            chunk.map_err(|bytes| {
                ServerFnError::Deserialization(String::from_utf8_lossy(&bytes).into_owned())
            })
        }))))
    }
}
