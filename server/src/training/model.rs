//! The classifier: a torchvision-style ResNet backbone and the seeds' head
//! (Linear(features,128) → ReLU → Linear(128, classes)). Weights keep
//! torchvision's names (`conv1.weight`, `layer1.0.bn1.running_mean`,
//! `fc.0.weight`…), so a PyTorch state dict saved as safetensors loads as is.
//!
//! Backbone and head live in separate `VarStore`s: freezing the backbone is
//! then "give the optimiser only the head's store", and a frozen backbone
//! also runs in eval mode so its batch-norm statistics stay as loaded.

use app::training::Architecture;
use std::collections::HashMap;
use std::path::Path;
use tch::nn::{self, ModuleT, OptimizerConfig};
use tch::{Device, Tensor};

/// The head's prefix, torchvision's name for the final layer.
pub const HEAD: &str = "fc";

pub struct Classifier {
    pub architecture: Architecture,
    pub classes: i64,
    pub device: Device,
    backbone_vs: nn::VarStore,
    head_vs: nn::VarStore,
    backbone: Box<dyn ModuleT>,
    head: nn::Sequential,
    frozen: bool,
}

impl std::fmt::Debug for Classifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Classifier({}, {} classes, frozen: {})", self.architecture, self.classes, self.frozen)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    #[error("cannot read weights from {path}: {message}")]
    Read { path: String, message: String },
    #[error("{0}")]
    Mismatch(String),
    #[error("libtorch: {0}")]
    Torch(#[from] tch::TchError),
}

impl Classifier {
    pub fn new(architecture: Architecture, classes: i64, device: Device) -> Self {
        let backbone_vs = nn::VarStore::new(device);
        let head_vs = nn::VarStore::new(device);
        let backbone: Box<dyn ModuleT> = match architecture {
            Architecture::Resnet18 => Box::new(tch::vision::resnet::resnet18_no_final_layer(&backbone_vs.root())),
            Architecture::Resnet50 => Box::new(tch::vision::resnet::resnet50_no_final_layer(&backbone_vs.root())),
        };
        let p = head_vs.root() / HEAD;
        let head = nn::seq()
            .add(nn::linear(&p / "0", architecture.features(), 128, Default::default()))
            .add_fn(|x| x.relu())
            .add(nn::linear(&p / "2", 128, classes, Default::default()));
        Classifier { architecture, classes, device, backbone_vs, head_vs, backbone, head, frozen: false }
    }

    pub fn forward_t(&self, images: &Tensor, train: bool) -> Tensor {
        let features = self.backbone.forward_t(images, train && !self.frozen);
        let features = if self.frozen { features.detach() } else { features };
        features.apply(&self.head)
    }

    /// Stops the backbone from learning: no gradients, eval-mode batch norm.
    pub fn freeze_backbone(&mut self) {
        self.backbone_vs.freeze();
        self.frozen = true;
    }

    pub fn is_frozen(&self) -> bool {
        self.frozen
    }

    /// Adam over what trains: the head, and the backbone unless frozen.
    pub fn optimizers(&self, learning_rate: f64) -> Result<Vec<nn::Optimizer>, ModelError> {
        let mut optimizers = vec![nn::Adam::default().build(&self.head_vs, learning_rate)?];
        if !self.frozen {
            optimizers.push(nn::Adam::default().build(&self.backbone_vs, learning_rate)?);
        }
        Ok(optimizers)
    }

    /// Every tensor under its saved name, backbone first.
    pub fn named_tensors(&self) -> Vec<(String, Tensor)> {
        let mut all: Vec<(String, Tensor)> = self.backbone_vs.variables().into_iter().collect();
        all.extend(self.head_vs.variables());
        all.sort_by(|a, b| a.0.cmp(&b.0));
        all
    }

    pub fn parameter_count(&self) -> i64 {
        self.named_tensors().iter().filter(|(n, _)| !n.contains("running_")).map(|(_, t)| t.numel() as i64).sum()
    }

    /// Saves every weight as one safetensors file.
    pub fn save(&self, path: &Path) -> Result<(), ModelError> {
        let tensors: Vec<(String, Tensor)> =
            self.named_tensors().into_iter().map(|(n, t)| (n, t.to_device(Device::Cpu))).collect();
        Tensor::write_safetensors(&tensors, path)?;
        Ok(())
    }

    /// Loads a whole model saved by [`Classifier::save`]: every tensor must be there.
    pub fn load(&mut self, path: &Path) -> Result<(), ModelError> {
        let file = read_weights(path)?;
        let copied = copy_matching(&self.backbone_vs, &file, true)? + copy_matching(&self.head_vs, &file, true)?;
        tracing::debug!(copied, path = %path.display(), "model loaded");
        Ok(())
    }

    /// Loads the backbone's tensors from a weights file (ours, or a
    /// torchvision state dict converted to safetensors; a `backbone.` or
    /// `model.` prefix is accepted). The head is left alone. Returns how many
    /// tensors were loaded.
    pub fn load_backbone(&mut self, path: &Path) -> Result<usize, ModelError> {
        let file = read_weights(path)?;
        let loaded = copy_matching(&self.backbone_vs, &file, false)?;
        let expected = self.backbone_vs.variables().len();
        if loaded == 0 {
            return Err(ModelError::Mismatch(format!(
                "{} has none of the {} backbone tensors of a {} (names such as conv1.weight, layer1.0.bn1.weight)",
                path.display(),
                expected,
                self.architecture
            )));
        }
        if loaded < expected {
            return Err(ModelError::Mismatch(format!(
                "{} holds only {loaded} of the {expected} backbone tensors of a {}: is it the same architecture?",
                path.display(),
                self.architecture
            )));
        }
        Ok(loaded)
    }
}

fn read_weights(path: &Path) -> Result<HashMap<String, Tensor>, ModelError> {
    let read = match path.extension().and_then(|e| e.to_str()) {
        Some("safetensors") => Tensor::read_safetensors(path),
        _ => Tensor::load_multi(path),
    };
    let tensors = read.map_err(|e| ModelError::Read { path: path.display().to_string(), message: e.to_string() })?;
    Ok(tensors
        .into_iter()
        .map(|(name, t)| {
            let name = name.strip_prefix("backbone.").or_else(|| name.strip_prefix("model.")).unwrap_or(&name).to_string();
            (name, t)
        })
        .collect())
}

/// Copies the file's tensors into the store's variables of the same name.
/// With `all`, every variable must be found. A shape mismatch is an error.
fn copy_matching(vs: &nn::VarStore, file: &HashMap<String, Tensor>, all: bool) -> Result<usize, ModelError> {
    let mut copied = 0;
    tch::no_grad(|| {
        for (name, mut var) in vs.variables() {
            match file.get(&name) {
                Some(src) if src.size() == var.size() => {
                    var.copy_(&src.to_device(var.device()).to_kind(var.kind()));
                    copied += 1;
                }
                Some(src) => {
                    return Err(ModelError::Mismatch(format!(
                        "{name} has shape {:?} in the file but {:?} in the model",
                        src.size(),
                        var.size()
                    )))
                }
                None if all => return Err(ModelError::Mismatch(format!("{name} is missing from the weights file"))),
                None => {}
            }
        }
        Ok(copied)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resnet18_with_the_seeds_head_has_the_expected_shape() {
        let model = Classifier::new(Architecture::Resnet18, 5, Device::Cpu);
        let out = tch::no_grad(|| model.forward_t(&Tensor::zeros([2, 3, 32, 32], (tch::Kind::Float, Device::Cpu)), false));
        assert_eq!(out.size(), [2, 5]);
        let names: Vec<String> = model.named_tensors().into_iter().map(|(n, _)| n).collect();
        for name in ["conv1.weight", "layer4.1.bn2.running_var", "fc.0.weight", "fc.2.bias"] {
            assert!(names.iter().any(|n| n == name), "{name} missing from {names:?}");
        }
        // ResNet-18 trunk 11.2 M + head 512·128+128 + 128·5+5.
        assert_eq!(model.parameter_count(), 11_176_512 + 65_664 + 645);
    }

    #[test]
    fn resnet50_feeds_2048_features_to_the_head() {
        let model = Classifier::new(Architecture::Resnet50, 133, Device::Cpu);
        let shapes: HashMap<String, Vec<i64>> = model.named_tensors().into_iter().map(|(n, t)| (n, t.size())).collect();
        assert_eq!(shapes["fc.0.weight"], [128, 2048]);
        assert_eq!(shapes["fc.2.weight"], [133, 128]);
    }

    #[test]
    fn saved_weights_load_back_and_wrong_files_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.safetensors");
        tch::manual_seed(1);
        let a = Classifier::new(Architecture::Resnet18, 3, Device::Cpu);
        a.save(&path).unwrap();
        tch::manual_seed(2);
        let mut b = Classifier::new(Architecture::Resnet18, 3, Device::Cpu);
        b.load(&path).unwrap();
        for ((na, ta), (nb, tb)) in a.named_tensors().into_iter().zip(b.named_tensors()) {
            assert_eq!(na, nb);
            assert!(ta.equal(&tb), "{na} differs after loading");
        }
        // A model with another head loads the backbone only.
        let mut c = Classifier::new(Architecture::Resnet18, 7, Device::Cpu);
        assert!(matches!(c.load(&path), Err(ModelError::Mismatch(_))));
        assert_eq!(c.load_backbone(&path).unwrap(), a.named_tensors().len() - 4);
        // A ResNet-50 finds no matching shapes.
        let mut d = Classifier::new(Architecture::Resnet50, 3, Device::Cpu);
        assert!(d.load_backbone(&path).is_err());
        std::fs::write(dir.path().join("junk.safetensors"), b"junk").unwrap();
        assert!(matches!(c.load_backbone(&dir.path().join("junk.safetensors")), Err(ModelError::Read { .. })));
    }
}
