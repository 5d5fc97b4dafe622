//! The actix-web middleware that runs [`super::gate`] around the routes. Unlike
//! `actix_web::middleware::from_fn`, it calls the inner service as it is, not boxed behind a
//! trait object: the routes' future is not moved into a second allocation on every request.

use std::future::{ready, Future, Ready};
use std::rc::Rc;

use actix_web::body::MessageBody;
use actix_web::dev::{forward_ready, Service, ServiceRequest, ServiceResponse, Transform};
use actix_web::Error;

/// The middleware: `App::wrap(layer(gate))`. The function is a type parameter (as in
/// `from_fn`) so that its future, which cannot be named, is the service's future.
pub struct GateLayer<F> {
    gate: Rc<F>,
}

/// Wraps an application in `gate` (in practice [`super::gate`]; tests may pass another).
pub fn layer<F>(gate: F) -> GateLayer<F> {
    GateLayer {
        gate: Rc::new(gate),
    }
}

/// The inner service (the routes) a request is passed to once the gate admits it.
pub struct Inner<S> {
    service: Rc<S>,
}

impl<S> Inner<S> {
    /// The routes `service`, for a test calling the gate by itself.
    #[cfg(test)]
    pub(crate) fn new(service: S) -> Self {
        Inner {
            service: Rc::new(service),
        }
    }

    /// Passes the request on to the routes.
    pub fn call(self, req: ServiceRequest) -> S::Future
    where
        S: Service<ServiceRequest>,
    {
        self.service.call(req)
    }
}

impl<S, F, Fut, B> Transform<S, ServiceRequest> for GateLayer<F>
where
    S: Service<ServiceRequest, Error = Error>,
    F: Fn(ServiceRequest, Inner<S>) -> Fut,
    Fut: Future<Output = Result<ServiceResponse<B>, Error>>,
    B: MessageBody,
{
    type Response = ServiceResponse<B>;
    type Error = Error;
    type Transform = GateService<S, F>;
    type InitError = ();
    type Future = Ready<Result<Self::Transform, Self::InitError>>;

    fn new_transform(&self, service: S) -> Self::Future {
        ready(Ok(GateService {
            service: Rc::new(service),
            gate: Rc::clone(&self.gate),
        }))
    }
}

/// The gate around one worker's copy of the routes.
pub struct GateService<S, F> {
    service: Rc<S>,
    gate: Rc<F>,
}

impl<S, F, Fut, B> Service<ServiceRequest> for GateService<S, F>
where
    S: Service<ServiceRequest, Error = Error>,
    F: Fn(ServiceRequest, Inner<S>) -> Fut,
    Fut: Future<Output = Result<ServiceResponse<B>, Error>>,
    B: MessageBody,
{
    type Response = ServiceResponse<B>;
    type Error = Error;
    type Future = Fut;

    forward_ready!(service);

    fn call(&self, req: ServiceRequest) -> Self::Future {
        (self.gate)(
            req,
            Inner {
                service: Rc::clone(&self.service),
            },
        )
    }
}
