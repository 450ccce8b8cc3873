//! Training. Local ("EC2") training with the embedded libtorch worker:
//! datasets and their check, the demo set, the input pipeline, the model,
//! the training loop, the job store and worker, and the command-line entry
//! points. SageMaker training: the job cache and launch, tuning, Sagedeck's
//! code for SageMaker's containers, and datasets uploaded to S3.

pub mod bench;
pub mod cli;
pub mod dataset;
pub mod demo;
pub mod history;
pub mod jobs;
pub mod model;
pub mod pipeline;
pub mod sagemaker;
pub mod sagemaker_code;
pub mod trainer;
pub mod tuning;
pub mod upload;
pub mod worker;
