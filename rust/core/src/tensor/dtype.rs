//! Tensor element types: names as RedisAI spells them, element sizes, and value ranges.

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DType {
    Float,
    Double,
    Int8,
    Int16,
    Int32,
    Int64,
    Uint8,
    Uint16,
    Bool,
    String,
}

pub const ALL_DTYPES: [DType; 10] = [
    DType::Float,
    DType::Double,
    DType::Int8,
    DType::Int16,
    DType::Int32,
    DType::Int64,
    DType::Uint8,
    DType::Uint16,
    DType::Bool,
    DType::String,
];

impl DType {
    /// Case-insensitive, as RedisAI (`strcasecmp`).
    pub fn parse(name: &[u8]) -> Option<DType> {
        ALL_DTYPES.into_iter().find(|d| d.name().as_bytes().eq_ignore_ascii_case(name))
    }

    pub fn name(self) -> &'static str {
        match self {
            DType::Float => "FLOAT",
            DType::Double => "DOUBLE",
            DType::Int8 => "INT8",
            DType::Int16 => "INT16",
            DType::Int32 => "INT32",
            DType::Int64 => "INT64",
            DType::Uint8 => "UINT8",
            DType::Uint16 => "UINT16",
            DType::Bool => "BOOL",
            DType::String => "STRING",
        }
    }

    /// Bytes per element; STRING elements have no fixed size (0).
    pub fn size(self) -> usize {
        match self {
            DType::Float | DType::Int32 => 4,
            DType::Double | DType::Int64 => 8,
            DType::Int8 | DType::Uint8 | DType::Bool => 1,
            DType::Int16 | DType::Uint16 => 2,
            DType::String => 0,
        }
    }

    pub fn is_float(self) -> bool {
        matches!(self, DType::Float | DType::Double)
    }

    /// Inclusive range of an integer type's values.
    pub fn int_range(self) -> Option<(i64, i64)> {
        Some(match self {
            DType::Int8 => (i8::MIN as i64, i8::MAX as i64),
            DType::Int16 => (i16::MIN as i64, i16::MAX as i64),
            DType::Int32 => (i32::MIN as i64, i32::MAX as i64),
            DType::Int64 => (i64::MIN, i64::MAX),
            DType::Uint8 => (0, u8::MAX as i64),
            DType::Uint16 => (0, u16::MAX as i64),
            DType::Bool => (0, 1),
            _ => return None,
        })
    }

    /// numpy's type character for the buffer protocol (`struct` module codes).
    pub fn format_char(self) -> &'static str {
        match self {
            DType::Float => "f",
            DType::Double => "d",
            DType::Int8 => "b",
            DType::Int16 => "h",
            DType::Int32 => "i",
            DType::Int64 => "q",
            DType::Uint8 => "B",
            DType::Uint16 => "H",
            DType::Bool => "?",
            DType::String => "B",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_case_insensitively() {
        for d in ALL_DTYPES {
            assert_eq!(DType::parse(d.name().as_bytes()), Some(d));
            assert_eq!(DType::parse(d.name().to_lowercase().as_bytes()), Some(d));
        }
        assert_eq!(DType::parse(b"INT128"), None);
        assert_eq!(DType::parse(b"UINT32"), None);
    }
}
