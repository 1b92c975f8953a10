//! Integration tests: the real server on 127.0.0.1:0 with a temporary data dir, over HTTP.
//! One test binary (modules) so the crate links once.

mod helpers;

mod alerts;
mod backlog;
mod backup;
mod bad_input;
mod browse;
mod console;
mod edge;
mod edge_process;
mod events;
mod fuzz;
mod gateway;
mod graphs;
mod hardening;
mod health;
mod intelligence;
mod jobs;
mod layers;
mod lifecycle;
mod listing;
mod observability;
mod outbound;
mod process;
mod realam;
mod realprom;
mod risk;
mod runbooks;
mod transfer;
mod triage;
