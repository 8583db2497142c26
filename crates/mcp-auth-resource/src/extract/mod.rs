//! TODO(helper): placeholder
