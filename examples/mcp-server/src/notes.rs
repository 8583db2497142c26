//! The notes the tools work on, kept in memory.
//!
//! In memory on purpose: the demo is about authorization, and what must survive a restart is the
//! authorization state (clients, refresh tokens, consents, signing keys), which the SQLite store
//! keeps. The notes are sample data; a restart brings back the welcome note only.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};

use serde::Serialize;

/// The longest note accepted, in bytes.
pub const MAX_NOTE_BYTES: usize = 4096;
/// The most notes kept at once.
pub const MAX_NOTES: usize = 1000;

/// One note.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Note {
    /// Its id, unique for the life of the process.
    pub id: u64,
    /// The `sub` of the token that added it.
    pub author: String,
    /// The text.
    pub text: String,
}

/// Why a note was not added.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AddError {
    /// The text is empty.
    #[error("a note cannot be empty")]
    Empty,
    /// The text is longer than [`MAX_NOTE_BYTES`].
    #[error("a note is at most {MAX_NOTE_BYTES} bytes")]
    TooLong,
    /// [`MAX_NOTES`] notes are kept already.
    #[error("the notebook is full ({MAX_NOTES} notes); delete some first")]
    Full,
}

/// A shared notebook. Cheap to clone (one `Arc`); every MCP session sees the same notes.
#[derive(Debug, Clone)]
pub struct Notes {
    inner: Arc<Mutex<Inner>>,
}

#[derive(Debug)]
struct Inner {
    next_id: u64,
    notes: BTreeMap<u64, Note>,
}

impl Default for Notes {
    fn default() -> Self {
        Self::new()
    }
}

impl Notes {
    /// A notebook holding one welcome note (id 1).
    pub fn new() -> Self {
        let notes = Self {
            inner: Arc::new(Mutex::new(Inner {
                next_id: 1,
                notes: BTreeMap::new(),
            })),
        };
        // Cannot fail: the notebook is empty and the text short.
        let _ = notes.add(
            "mcp-auth",
            "Welcome! list_notes and get_note need notes:read; add_note asks for notes:write and \
             delete_note for notes:admin by step-up.",
        );
        notes
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // A panic while holding the lock cannot leave the map half-updated, so go on.
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Every note, oldest first.
    pub fn list(&self) -> Vec<Note> {
        self.lock().notes.values().cloned().collect()
    }

    /// The note with this id.
    pub fn get(&self, id: u64) -> Option<Note> {
        self.lock().notes.get(&id).cloned()
    }

    /// Adds a note by `author`.
    ///
    /// # Errors
    /// See [`AddError`].
    pub fn add(&self, author: &str, text: &str) -> Result<Note, AddError> {
        let text = text.trim();
        if text.is_empty() {
            return Err(AddError::Empty);
        }
        if text.len() > MAX_NOTE_BYTES {
            return Err(AddError::TooLong);
        }
        let mut inner = self.lock();
        if inner.notes.len() >= MAX_NOTES {
            return Err(AddError::Full);
        }
        let id = inner.next_id;
        inner.next_id += 1;
        let note = Note {
            id,
            author: author.to_owned(),
            text: text.to_owned(),
        };
        inner.notes.insert(id, note.clone());
        Ok(note)
    }

    /// Removes the note with this id, returning it.
    pub fn delete(&self, id: u64) -> Option<Note> {
        self.lock().notes.remove(&id)
    }

    /// How many notes there are.
    pub fn len(&self) -> usize {
        self.lock().notes.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn add_get_list_delete() {
        let notes = Notes::new();
        assert_eq!(notes.len(), 1);
        let note = notes.add("alice", "  buy milk ").unwrap();
        assert_eq!(note.text, "buy milk");
        assert_eq!(notes.get(note.id), Some(note.clone()));
        assert_eq!(notes.list().len(), 2);
        assert_eq!(notes.add("alice", "   "), Err(AddError::Empty));
        assert_eq!(
            notes.add("alice", &"x".repeat(MAX_NOTE_BYTES + 1)),
            Err(AddError::TooLong)
        );
        assert_eq!(notes.delete(note.id), Some(note));
        assert_eq!(notes.delete(99), None);
    }
}
