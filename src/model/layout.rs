//! What the layout self-check found about a model on its backend (`model::probe` runs it):
//! whether several sequences may share a decode and whether a cached prefix may be reused.

/// What the probe found about a model on its backend.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Layout {
    /// Why several sequences may not share a decode (`None`: side by side equals one at a
    /// time, bit for bit).
    pub side_by_side: Option<String>,
    /// Why a cached prefix may not be reused (`None`: decoding a text's tail after its cached
    /// head equals decoding it whole).
    pub incremental: Option<String>,
}

impl Layout {
    pub fn side_by_side_exact(&self) -> bool {
        self.side_by_side.is_none()
    }

    pub fn incremental_exact(&self) -> bool {
        self.incremental.is_none()
    }

    /// For reports and the status bar: `None` when nothing needs saying.
    pub fn note(&self) -> Option<String> {
        let mut parts = Vec::new();
        if let Some(why) = &self.side_by_side {
            parts.push(format!("one sequence at a time ({why})"));
        }
        if let Some(why) = &self.incremental {
            parts.push(format!("every text decoded from scratch ({why})"));
        }
        (!parts.is_empty()).then(|| {
            format!(
                "the self-check found this model's numbers depend on how decodes are laid out on this backend: {}",
                parts.join("; ")
            )
        })
    }
}
