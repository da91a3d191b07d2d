//! A failure that ends the program with one line on stderr.

/// A failure that ends the program: the message (one line) and the exit status.
#[derive(Debug)]
pub struct Fatal {
    pub message: String,
    pub status: u8,
}

impl Fatal {
    pub fn other(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            status: 2,
        }
    }
}
