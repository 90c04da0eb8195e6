//! End-to-end tests against a real Kafka-protocol broker (tansu), a real SQLite catalog and
//! independent readers. Start components via `harness`; see `scripts/test.sh`.

mod api;
mod audit;
mod catalog_proxy;
mod cli;
mod company;
mod contract_cli;
mod coordination;
mod glue;
mod glue_server;
mod harness;
mod ingest;
mod interop;
mod isolation;
mod kafka_security;
mod lake;
mod lineage;
mod metrics;
mod pii;
mod poison;
mod postgres;
mod quarantine_cli;
mod readers;
mod redrive;
mod rest;
mod rest_server;
mod run_spans;
mod s3;
mod s3_server;
mod secrets;
mod shared;
mod shutdown;
mod stack;
mod tls_proxy;
mod transforms;
mod whole_pipeline;
