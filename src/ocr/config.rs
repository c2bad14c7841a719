//! `[ocr]`: how scans are read, as written in the configuration; owned by the OCR stage,
//! gathered by `config`. [`OcrConfig::settings`] gives the settings the stage runs with.

use serde::Deserialize;

/// Text recognition of scans (src/ocr).
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct OcrConfig {
    /// Read image-only scans with Tesseract. Off: a scan counts as an unreadable attachment.
    pub enabled: bool,
    /// Tesseract language model.
    pub lang: String,
    /// Pages recognised at once in the whole process; 0 means one per core.
    pub workers: usize,
    /// Limit for one Tesseract run on one page.
    pub page_timeout_secs: u64,
    /// Scanned pages of one attachment that are read; later pages are left out.
    pub max_pages: usize,
    /// An image with more pixels than this is not decoded.
    pub max_pixels: u64,
    /// Address space of each external program (pdftoppm, tesseract), in MiB; 0: no limit.
    pub child_memory_mb: u64,
}

impl OcrConfig {
    /// What keeps these settings from working (`config` gathers every component's).
    pub fn problems(&self) -> Vec<String> {
        let mut p = Vec::new();
        if self.page_timeout_secs == 0 || self.max_pages == 0 || self.max_pixels == 0 {
            p.push("ocr: page_timeout_secs, max_pages and max_pixels must be at least 1".into());
        }
        let model_name = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == '+';
        if self.lang.trim().is_empty() || !self.lang.chars().all(model_name) {
            p.push(format!(
                "ocr.lang: not a Tesseract model name (e.g. swe): {:?}",
                self.lang
            ));
        }
        p
    }

    /// The settings the OCR stage runs with.
    pub fn settings(&self) -> crate::ocr::OcrSettings {
        let d = crate::ocr::OcrSettings::default();
        crate::ocr::OcrSettings {
            enabled: self.enabled,
            lang: self.lang.clone(),
            page_timeout: std::time::Duration::from_secs(self.page_timeout_secs),
            raster: crate::ocr::RasterLimits {
                max_pages: self.max_pages,
                max_pixels: self.max_pixels,
                ..d.raster
            },
        }
    }
}

impl Default for OcrConfig {
    fn default() -> Self {
        let d = crate::ocr::OcrSettings::default();
        OcrConfig {
            enabled: d.enabled,
            lang: d.lang,
            workers: 0,
            page_timeout_secs: d.page_timeout.as_secs(),
            max_pages: d.raster.max_pages,
            max_pixels: d.raster.max_pixels,
            child_memory_mb: crate::ocr::child::DEFAULT_MEMORY_MB,
        }
    }
}
