//! The test server driven by the clients that will use it: kube-rs (Api, discovery, watcher, Controller,
//! kube-lease-manager), the real kubectl and both helm lines. One test binary keeps link time down.

mod bin;
mod common;
mod exec;
mod faults;
mod helm;
mod kube_api;
mod kubectl;
mod watch;
