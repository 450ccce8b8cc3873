//! What a local training job is asked to do, and the rules a spec must meet
//! before it is queued. The same `validate` runs in the browser (the form
//! shows each problem beside its field) and on the server (nothing invalid
//! is queued, whatever the client sent).

use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Architecture {
    /// The small default for CPUs: 512 features into the head.
    Resnet18,
    /// The seeds' architecture: 2048 features into Linear(2048,128) → ReLU → Linear(128, classes).
    Resnet50,
}

impl Architecture {
    pub const ALL: [Architecture; 2] = [Architecture::Resnet18, Architecture::Resnet50];

    pub fn as_str(self) -> &'static str {
        match self {
            Architecture::Resnet18 => "resnet18",
            Architecture::Resnet50 => "resnet50",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Architecture::Resnet18 => "ResNet-18 (fast on CPU)",
            Architecture::Resnet50 => "ResNet-50 (the seeds' model)",
        }
    }

    pub fn parse(word: &str) -> Option<Architecture> {
        Self::ALL.into_iter().find(|a| a.as_str() == word)
    }

    /// Width of the backbone's pooled features, the head's input.
    pub fn features(self) -> i64 {
        match self {
            Architecture::Resnet18 => 512,
            Architecture::Resnet50 => 2048,
        }
    }
}

impl std::fmt::Display for Architecture {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How the training images are varied from epoch to epoch. The default is
/// what suits photos of things (and what the seeds trained with): random
/// crops of 35–100 % of the area, half of them mirrored. Characters, digits
/// and anything whose meaning has a side need no mirroring and milder crops.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Augmentation {
    /// Mirror half the images left to right.
    pub flip: bool,
    /// RandomResizedCrop's range of the image area kept (at aspect ratios
    /// 3:4 to 4:3); `None` resizes the whole image.
    pub crop: Option<(f32, f32)>,
}

impl Default for Augmentation {
    fn default() -> Self {
        Augmentation::PHOTOS
    }
}

impl Augmentation {
    pub const PHOTOS: Augmentation = Augmentation { flip: true, crop: Some((0.35, 1.0)) };
    pub const NONE: Augmentation = Augmentation { flip: false, crop: None };
    /// The smallest crop accepted: below it the object is usually gone.
    pub const MIN_CROP: f32 = 0.05;

    /// In words, for the job page and the CLI.
    pub fn describe(&self) -> String {
        match (self.crop, self.flip) {
            (None, false) => "none (the whole image, resized)".into(),
            (None, true) => "mirrored half the time, no crop".into(),
            (Some((lo, hi)), flip) => format!(
                "random crops of {:.0}–{:.0} % of the area{}",
                lo * 100.0,
                hi * 100.0,
                if flip { ", mirrored half the time" } else { ", never mirrored" }
            ),
        }
    }

    /// The CLI's `--augment`: `photos`, `none`, or a list of `flip` and
    /// `crop=LOW-HIGH` (fractions of the area), such as `crop=0.7-1`.
    pub fn parse(text: &str) -> Result<Augmentation, String> {
        match text.trim() {
            "photos" | "default" => return Ok(Augmentation::PHOTOS),
            "none" => return Ok(Augmentation::NONE),
            _ => {}
        }
        let mut out = Augmentation::NONE;
        for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            if part == "flip" {
                out.flip = true;
            } else if let Some(range) = part.strip_prefix("crop=") {
                let (lo, hi) = range.split_once('-').ok_or_else(|| format!("crop={range}: give LOW-HIGH, such as crop=0.7-1"))?;
                let number = |t: &str| t.trim().parse::<f32>().map_err(|_| format!("crop={range}: {t:?} is not a number"));
                out.crop = Some((number(lo)?, number(hi)?));
            } else {
                return Err(format!("{part:?} is not an augmentation: use photos, none, flip, crop=LOW-HIGH"));
            }
        }
        out.check().map(|()| out)
    }

    pub fn check(&self) -> Result<(), String> {
        match self.crop {
            Some((lo, hi)) if !(lo.is_finite() && hi.is_finite() && Self::MIN_CROP <= lo && lo <= hi && hi <= 1.0) => Err(format!(
                "a crop keeps a fraction of the area from {} to 1, the smaller first (got {lo}–{hi})",
                Self::MIN_CROP
            )),
            _ => Ok(()),
        }
    }
}

/// A local training job as asked for.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LocalJobSpec {
    pub name: String,
    /// The dataset folder with `train/`, `valid/` and `test/`.
    pub dataset: String,
    pub architecture: Architecture,
    /// Side of the square images the model sees, in pixels.
    pub image_size: u32,
    pub epochs: u32,
    pub batch_size: u32,
    pub learning_rate: f64,
    /// Stop after this many epochs without a better validation loss; 0 never stops early.
    pub patience: u32,
    /// libtorch's CPU threads; 0 lets libtorch choose.
    pub threads: u32,
    /// Threads decoding and transforming images ahead of the model; 0 picks one from the CPU count.
    pub loader_threads: u32,
    /// A weights file (safetensors, or tch's .ot) whose backbone tensors are loaded before training.
    #[serde(default)]
    pub backbone_weights: Option<String>,
    /// Train only the head; the backbone's weights and batch-norm statistics stay as loaded.
    #[serde(default)]
    pub freeze_backbone: bool,
    /// How training images are varied (jobs from before the choice: photos).
    #[serde(default)]
    pub augmentation: Augmentation,
    /// Seeds the shuffling, the augmentations and the initial weights.
    pub seed: u64,
}

impl Default for LocalJobSpec {
    fn default() -> Self {
        LocalJobSpec {
            name: "local-training".into(),
            dataset: String::new(),
            architecture: Architecture::Resnet18,
            image_size: 64,
            epochs: 12,
            batch_size: 16,
            learning_rate: 0.002,
            patience: 3,
            threads: 0,
            loader_threads: 0,
            backbone_weights: None,
            freeze_backbone: false,
            augmentation: Augmentation::PHOTOS,
            seed: 42,
        }
    }
}

/// One field's problem, for showing beside the field.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FieldError {
    pub field: &'static str,
    pub message: String,
}

pub const MAX_NAME_LEN: usize = 63;

impl LocalJobSpec {
    /// Checks every field and returns the spec with its text fields trimmed,
    /// or every problem found (not just the first).
    pub fn validate(&self) -> Result<LocalJobSpec, Vec<FieldError>> {
        let mut errors = Vec::new();
        let mut fail = |field: &'static str, message: String| errors.push(FieldError { field, message });
        let mut spec = self.clone();
        spec.name = spec.name.trim().to_string();
        spec.dataset = spec.dataset.trim().to_string();
        spec.backbone_weights = spec.backbone_weights.map(|w| w.trim().to_string()).filter(|w| !w.is_empty());

        if spec.name.is_empty() {
            fail("name", "Give the job a name.".into());
        } else if spec.name.len() > MAX_NAME_LEN {
            fail("name", format!("At most {MAX_NAME_LEN} characters."));
        } else if !spec.name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.') {
            fail("name", "Use letters, digits, '-', '_' and '.' only.".into());
        }
        if spec.dataset.is_empty() {
            fail("dataset", "Give the dataset folder (or make the demo set).".into());
        }
        if !(16..=512).contains(&spec.image_size) {
            fail("image_size", "Between 16 and 512 pixels.".into());
        }
        if !(1..=1000).contains(&spec.epochs) {
            fail("epochs", "Between 1 and 1000.".into());
        }
        if !(1..=1024).contains(&spec.batch_size) {
            fail("batch_size", "Between 1 and 1024.".into());
        }
        if !(spec.learning_rate.is_finite() && spec.learning_rate > 0.0 && spec.learning_rate <= 1.0) {
            fail("learning_rate", "A number above 0 and at most 1, such as 0.001.".into());
        }
        if spec.patience > 1000 {
            fail("patience", "At most 1000; 0 turns early stopping off.".into());
        }
        if spec.threads > 256 {
            fail("threads", "At most 256; 0 lets libtorch choose.".into());
        }
        if spec.loader_threads > 64 {
            fail("loader_threads", "At most 64; 0 picks from the CPU count.".into());
        }
        if spec.freeze_backbone && spec.backbone_weights.is_none() {
            fail(
                "freeze_backbone",
                "Freezing needs backbone weights: a frozen random backbone would never learn.".into(),
            );
        }
        if let Err(e) = spec.augmentation.check() {
            fail("augmentation", format!("The {e}."));
        }
        if errors.is_empty() {
            Ok(spec)
        } else {
            Err(errors)
        }
    }
}

/// The problems as one sentence per field, for an API error message.
pub fn describe(errors: &[FieldError]) -> String {
    errors.iter().map(|e| format!("{}: {}", e.field, e.message)).collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn valid() -> LocalJobSpec {
        LocalJobSpec { dataset: "/data/demo".into(), ..LocalJobSpec::default() }
    }

    fn fields(spec: &LocalJobSpec) -> Vec<&'static str> {
        spec.validate().err().unwrap_or_default().into_iter().map(|e| e.field).collect()
    }

    #[test]
    fn the_default_with_a_dataset_is_valid_and_trimmed() {
        let spec = LocalJobSpec { name: "  run-1 ".into(), dataset: " /d ".into(), ..valid() };
        let ok = spec.validate().unwrap();
        assert_eq!(ok.name, "run-1");
        assert_eq!(ok.dataset, "/d");
    }

    #[test]
    fn every_problem_is_reported_at_once() {
        let spec = LocalJobSpec {
            name: "bad name!".into(),
            dataset: " ".into(),
            image_size: 8,
            epochs: 0,
            batch_size: 0,
            learning_rate: f64::NAN,
            ..valid()
        };
        assert_eq!(fields(&spec), ["name", "dataset", "image_size", "epochs", "batch_size", "learning_rate"]);
    }

    #[test]
    fn learning_rate_must_be_positive_and_sane() {
        for lr in [0.0, -0.1, 1.5, f64::INFINITY] {
            assert_eq!(fields(&LocalJobSpec { learning_rate: lr, ..valid() }), ["learning_rate"], "{lr}");
        }
        assert!(LocalJobSpec { learning_rate: 1.0, ..valid() }.validate().is_ok());
    }

    #[test]
    fn patience_is_bounded_and_zero_turns_it_off() {
        assert_eq!(fields(&LocalJobSpec { patience: 1001, ..valid() }), ["patience"]);
        assert!(LocalJobSpec { epochs: 3, patience: 0, ..valid() }.validate().is_ok());
        assert!(LocalJobSpec { epochs: 1, patience: 3, ..valid() }.validate().is_ok());
    }

    #[test]
    fn freezing_needs_weights() {
        assert_eq!(fields(&LocalJobSpec { freeze_backbone: true, ..valid() }), ["freeze_backbone"]);
        let blank = LocalJobSpec { freeze_backbone: true, backbone_weights: Some("  ".into()), ..valid() };
        assert_eq!(fields(&blank), ["freeze_backbone"]);
        let with = LocalJobSpec { freeze_backbone: true, backbone_weights: Some("w.safetensors".into()), ..valid() };
        assert!(with.validate().is_ok());
    }

    #[test]
    fn augmentation_is_a_choice_with_photos_as_the_default() {
        assert_eq!(LocalJobSpec::default().augmentation, Augmentation::PHOTOS);
        assert_eq!(Augmentation::parse("none"), Ok(Augmentation::NONE));
        assert_eq!(Augmentation::parse("photos"), Ok(Augmentation::PHOTOS));
        assert_eq!(Augmentation::parse("crop=0.7-1"), Ok(Augmentation { flip: false, crop: Some((0.7, 1.0)) }));
        assert_eq!(Augmentation::parse("flip, crop=0.35-1"), Ok(Augmentation::PHOTOS));
        assert!(Augmentation::parse("crop=1-0.5").is_err());
        assert!(Augmentation::parse("crop=0.01-1").is_err());
        assert!(Augmentation::parse("rotate").is_err());
        assert_eq!(Augmentation::PHOTOS.describe(), "random crops of 35–100 % of the area, mirrored half the time");
        assert_eq!(fields(&LocalJobSpec { augmentation: Augmentation { flip: false, crop: Some((0.9, 0.5)) }, ..valid() }), ["augmentation"]);
        // A job stored before the choice existed reads as photos.
        let old = serde_json::to_value(valid()).unwrap();
        let mut old = old.as_object().unwrap().clone();
        old.remove("augmentation");
        let read: LocalJobSpec = serde_json::from_value(serde_json::Value::Object(old)).unwrap();
        assert_eq!(read.augmentation, Augmentation::PHOTOS);
    }

    #[test]
    fn architectures_parse_and_know_their_width() {
        assert_eq!(Architecture::parse("resnet50"), Some(Architecture::Resnet50));
        assert_eq!(Architecture::parse("vgg"), None);
        assert_eq!(Architecture::Resnet50.features(), 2048);
        assert_eq!(serde_json::to_string(&Architecture::Resnet18).unwrap(), "\"resnet18\"");
    }
}

/// The "New local training job" form as typed: text, parsed here so the
/// page and the tests share one set of rules.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct FormFields {
    pub name: String,
    pub dataset: String,
    pub architecture: String,
    pub image_size: String,
    pub epochs: String,
    pub batch_size: String,
    pub learning_rate: String,
    pub patience: String,
    pub threads: String,
    pub backbone_weights: String,
    pub freeze_backbone: bool,
    pub flip: bool,
    /// Percent of the area a crop keeps, low and high; both blank: no crop.
    pub crop_min: String,
    pub crop_max: String,
}

impl FormFields {
    pub fn from_spec(spec: &LocalJobSpec) -> Self {
        FormFields {
            name: spec.name.clone(),
            dataset: spec.dataset.clone(),
            architecture: spec.architecture.as_str().into(),
            image_size: spec.image_size.to_string(),
            epochs: spec.epochs.to_string(),
            batch_size: spec.batch_size.to_string(),
            learning_rate: spec.learning_rate.to_string(),
            patience: spec.patience.to_string(),
            threads: spec.threads.to_string(),
            backbone_weights: spec.backbone_weights.clone().unwrap_or_default(),
            freeze_backbone: spec.freeze_backbone,
            flip: spec.augmentation.flip,
            crop_min: spec.augmentation.crop.map(|c| format!("{:.0}", c.0 * 100.0)).unwrap_or_default(),
            crop_max: spec.augmentation.crop.map(|c| format!("{:.0}", c.1 * 100.0)).unwrap_or_default(),
        }
    }

    /// Parses and validates; `base` supplies what the form does not show (seed, loader threads).
    pub fn to_spec(&self, base: &LocalJobSpec) -> Result<LocalJobSpec, Vec<FieldError>> {
        let mut errors = Vec::new();
        let mut whole = |field: &'static str, text: &str, fallback: u32| match text.trim().parse::<u32>() {
            Ok(v) => v,
            Err(_) => {
                errors.push(FieldError { field, message: "Enter a whole number.".into() });
                fallback
            }
        };
        let image_size = whole("image_size", &self.image_size, base.image_size);
        let epochs = whole("epochs", &self.epochs, base.epochs);
        let batch_size = whole("batch_size", &self.batch_size, base.batch_size);
        let patience = whole("patience", &self.patience, base.patience);
        let threads = whole("threads", &self.threads, base.threads);
        let learning_rate = match self.learning_rate.trim().parse::<f64>() {
            Ok(v) => v,
            Err(_) => {
                errors.push(FieldError { field: "learning_rate", message: "Enter a number such as 0.001.".into() });
                base.learning_rate
            }
        };
        let crop = match (self.crop_min.trim(), self.crop_max.trim()) {
            ("", "") => None,
            (lo, hi) => match (lo.parse::<f32>(), if hi.is_empty() { Ok(100.0) } else { hi.parse::<f32>() }) {
                (Ok(lo), Ok(hi)) => Some((lo / 100.0, hi / 100.0)),
                _ => {
                    errors.push(FieldError { field: "augmentation", message: "Crop percentages are numbers such as 35 and 100 (both blank: no crop).".into() });
                    base.augmentation.crop
                }
            },
        };
        let architecture = Architecture::parse(&self.architecture).unwrap_or_else(|| {
            errors.push(FieldError { field: "architecture", message: "Choose an architecture.".into() });
            base.architecture
        });
        let spec = LocalJobSpec {
            name: self.name.clone(),
            dataset: self.dataset.clone(),
            architecture,
            image_size,
            epochs,
            batch_size,
            learning_rate,
            patience,
            threads,
            backbone_weights: Some(self.backbone_weights.clone()),
            freeze_backbone: self.freeze_backbone,
            augmentation: Augmentation { flip: self.flip, crop },
            ..base.clone()
        };
        match spec.validate() {
            Ok(spec) if errors.is_empty() => Ok(spec),
            Ok(_) => Err(errors),
            Err(more) => {
                // Keep one message per field: a parse error beats a range error.
                for e in more {
                    if !errors.iter().any(|x| x.field == e.field) {
                        errors.push(e);
                    }
                }
                Err(errors)
            }
        }
    }
}

#[cfg(test)]
mod form_tests {
    use super::*;

    #[test]
    fn the_form_round_trips_a_spec() {
        let spec = LocalJobSpec { dataset: "/d".into(), ..LocalJobSpec::default() };
        assert_eq!(FormFields::from_spec(&spec).to_spec(&spec).unwrap(), spec);
    }

    #[test]
    fn the_form_sets_the_augmentation() {
        let base = LocalJobSpec { dataset: "/d".into(), ..LocalJobSpec::default() };
        let plain = FormFields { flip: false, crop_min: String::new(), crop_max: String::new(), ..FormFields::from_spec(&base) };
        assert_eq!(plain.to_spec(&base).unwrap().augmentation, Augmentation::NONE);
        let mild = FormFields { flip: false, crop_min: "70".into(), crop_max: "".into(), ..FormFields::from_spec(&base) };
        assert_eq!(mild.to_spec(&base).unwrap().augmentation, Augmentation { flip: false, crop: Some((0.7, 1.0)) });
        let bad = FormFields { crop_min: "most".into(), ..FormFields::from_spec(&base) };
        assert_eq!(bad.to_spec(&base).unwrap_err()[0].field, "augmentation");
    }

    #[test]
    fn text_that_is_not_a_number_is_named_once() {
        let base = LocalJobSpec { dataset: "/d".into(), ..LocalJobSpec::default() };
        let form = FormFields { epochs: "ten".into(), learning_rate: "fast".into(), image_size: "-3".into(), ..FormFields::from_spec(&base) };
        let errors = form.to_spec(&base).unwrap_err();
        let fields: Vec<_> = errors.iter().map(|e| e.field).collect();
        assert_eq!(fields, ["image_size", "epochs", "learning_rate"]);
        assert!(errors[0].message.contains("whole number"));
    }
}
