//! The Docker engine: the only module that uses bollard. Everything else speaks our own types
//! ([`ContainerStatus`], [`ManagedResource`], compose services), and every bollard error is
//! wrapped with what was being attempted ([`EngineError`]).

mod address;
mod address_list;
mod build_context;
mod client;
mod container;
mod container_spec;
mod dockerignore;
mod error;
mod extract;
mod host_folders;
mod image;
mod layered;
mod types;
mod upload;
mod visibility;

pub use address::{
    AddressError, EngineAddress, EngineEnv, TlsFiles, Transport, ACCEPTED_FORMS, DEFAULT_SOCKET,
};
pub use address_list::{engine_addresses, EngineListError};
pub use build_context::{pack as pack_build_context, BuildContext};
pub use client::DockerEngine;
pub use container::{ExecRequest, Folder};
pub use container_spec::{container_name, ContainerOverrides};
pub use dockerignore::IgnoreRules;
pub use error::EngineError;
pub use extract::{extract_tar, ExtractError};
pub use image::ImageSource;
pub use types::{
    ArchiveFile, ContainerStatus, EngineInfo, ExecOutcome, Health, HealthTiming, ImageConfig,
    ManagedResource, ResourceKind,
};
pub use upload::{SourceUpload, UploadSummary};
