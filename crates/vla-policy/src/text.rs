//! The frozen instruction encoder: all-MiniLM-L6-v2 (BERT, 6 layers, 384
//! wide) run with candle-transformers and the `tokenizers` crate.
//!
//! [`TextEncoder::encode`] returns the token-level outputs (`seq × 384`,
//! special tokens included) that the policy attends to, and the
//! sentence-transformers embedding (mean over tokens, L2-normalised).
//!
//! Speed: the shipped `tokenizer.json` pads every input to 128 tokens; with
//! that padding a 10-word instruction costs ~10× the work it needs. Padding is
//! switched off here (one sentence at a time needs no padding), which is the
//! main reason encoding is fast (see the crate README for figures).

use std::path::Path;

use candle_core::{DType, Device, Tensor, D};
use candle_nn::VarBuilder;
use candle_transformers::models::bert::{BertModel, Config as BertConfig};
use tokenizers::{Tokenizer, TruncationParams};

use crate::error::{io_err, Result, VlaPolicyError};
use crate::text_files;

/// Width of MiniLM's token outputs.
pub const TEXT_HIDDEN: usize = 384;

/// Longest instruction in word pieces (special tokens included); longer ones are truncated.
pub const MAX_TEXT_TOKENS: usize = 64;

/// An encoded instruction.
#[derive(Debug, Clone)]
pub struct EncodedText {
    /// Token-level outputs, `(seq, 384)`, f32.
    pub tokens: Tensor,
    /// Mean-pooled, L2-normalised sentence embedding, `(384,)`, f32.
    pub pooled: Tensor,
}

/// all-MiniLM-L6-v2, frozen.
pub struct TextEncoder {
    bert: BertModel,
    tokenizer: Tokenizer,
    device: Device,
}

impl TextEncoder {
    /// Loads the encoder from the usual place (explicit folder, then
    /// `VLA_TEXT_ENCODER`, then the user cache, fetching on first use).
    pub fn from_default_location(explicit: Option<&Path>, device: &Device) -> Result<Self> {
        let dir = text_files::text_encoder_dir(explicit)?;
        Self::load(&dir, device)
    }

    /// Loads from a folder holding `config.json`, `tokenizer.json` and
    /// `model.safetensors` (not re-verified here).
    pub fn load(dir: &Path, device: &Device) -> Result<Self> {
        let config_path = dir.join("config.json");
        let text = std::fs::read_to_string(&config_path).map_err(io_err(&config_path))?;
        let config: BertConfig = serde_json::from_str(&text).map_err(|e| VlaPolicyError::Json {
            path: config_path.clone(),
            message: e.to_string(),
        })?;
        if config.hidden_size != TEXT_HIDDEN {
            return Err(VlaPolicyError::Config(format!(
                "text encoder hidden size is {}, the policy needs {TEXT_HIDDEN}",
                config.hidden_size
            )));
        }
        let mut tokenizer = Tokenizer::from_file(dir.join("tokenizer.json"))
            .map_err(|e| VlaPolicyError::Tokenizer(e.to_string()))?;
        tokenizer.with_padding(None);
        tokenizer
            .with_truncation(Some(TruncationParams {
                max_length: MAX_TEXT_TOKENS,
                ..Default::default()
            }))
            .map_err(|e| VlaPolicyError::Tokenizer(e.to_string()))?;
        let weights = dir.join("model.safetensors");
        // SAFETY-free load: read into memory rather than mmap (unsafe is denied).
        let tensors = candle_core::safetensors::load(&weights, device).map_err(|e| {
            VlaPolicyError::CorruptCheckpoint {
                path: weights.clone(),
                message: e.to_string(),
            }
        })?;
        let vb = VarBuilder::from_tensors(tensors, DType::F32, device);
        let bert = BertModel::load(vb, &config)?;
        Ok(Self {
            bert,
            tokenizer,
            device: device.clone(),
        })
    }

    /// Word-piece ids of `text`, with `[CLS]` and `[SEP]`.
    pub fn token_ids(&self, text: &str) -> Result<Vec<u32>> {
        let enc = self
            .tokenizer
            .encode(text, true)
            .map_err(|e| VlaPolicyError::Tokenizer(e.to_string()))?;
        Ok(enc.get_ids().to_vec())
    }

    /// For each word piece of `text` (as [`Self::token_ids`] returns them),
    /// the whole word it came from, lower-cased; `None` for `[CLS]` and
    /// `[SEP]`.
    pub fn token_words(&self, text: &str) -> Result<Vec<Option<String>>> {
        let enc = self
            .tokenizer
            .encode(text, true)
            .map_err(|e| VlaPolicyError::Tokenizer(e.to_string()))?;
        let (words, offsets) = (enc.get_word_ids(), enc.get_offsets());
        let special = enc.get_special_tokens_mask();
        let span = |w: u32| {
            let pieces = words
                .iter()
                .zip(offsets)
                .filter(|(x, _)| **x == Some(w))
                .map(|(_, o)| *o);
            let start = pieces.clone().map(|o| o.0).min().unwrap_or(0);
            let end = pieces.map(|o| o.1).max().unwrap_or(0);
            text.get(start..end).map(str::to_lowercase)
        };
        Ok(words
            .iter()
            .zip(special)
            .map(|(w, &sp)| if sp == 1 { None } else { w.and_then(span) })
            .collect())
    }

    /// Encodes one instruction.
    pub fn encode(&self, text: &str) -> Result<EncodedText> {
        let ids = self.token_ids(text)?;
        let n = ids.len();
        let input = Tensor::from_vec(ids, (1, n), &self.device)?;
        let types = input.zeros_like()?;
        let out = self.bert.forward(&input, &types, None)?.squeeze(0)?; // (n, 384)
        let mean = out.mean(0)?;
        let norm = mean.sqr()?.sum_all()?.sqrt()?.maximum(1e-12)?;
        let pooled = mean.broadcast_div(&norm)?;
        Ok(EncodedText {
            tokens: out,
            pooled,
        })
    }
}

/// Cosine similarity of two pooled embeddings (both already unit length).
pub fn cosine(a: &EncodedText, b: &EncodedText) -> Result<f32> {
    Ok((&a.pooled * &b.pooled)?
        .sum(D::Minus1)?
        .to_scalar::<f32>()?)
}
