//! TODO(helper): placeholder
pub struct BearerAuth; pub struct BearerAuthLayer;
