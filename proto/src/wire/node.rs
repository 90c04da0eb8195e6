//! One message type's columns: parse a message's fields (keeping the last occurrence of a
//! singular field, as Protobuf does), then append one row to every column.

use std::collections::HashMap;

use arrow_array::{ArrayRef, StructArray};
use arrow_buffer::NullBufferBuilder;
use arrow_schema::Fields;
use prost_reflect::MessageDescriptor;

use super::Fail;
use super::column::Column;
use super::reader::{FieldReader, Raw};

struct Slot {
    /// A table column the contract does not have is a presence slot that is never seen,
    /// so it reads null.
    presence: bool,
    repeated: bool,
    column: Column,
    last: Option<Raw>,
    all: Vec<Raw>,
}

/// Field numbers above this are looked up in a map instead of a dense table.
const DENSE_NUMBERS: u32 = 1024;

/// Field number → slot index. Looked up once per field on the wire, so the common case of
/// small field numbers is a plain index.
struct SlotIndex {
    dense: Vec<Option<u16>>,
    sparse: HashMap<u32, usize>,
}

impl SlotIndex {
    fn new(numbers: &[(u32, usize)]) -> Self {
        let max = numbers.iter().map(|(n, _)| *n).filter(|n| *n <= DENSE_NUMBERS).max().unwrap_or(0);
        let mut dense = vec![None; max as usize + 1];
        let mut sparse = HashMap::new();
        for &(number, index) in numbers {
            match u16::try_from(index) {
                Ok(i) if number <= DENSE_NUMBERS => dense[number as usize] = Some(i),
                _ => {
                    sparse.insert(number, index);
                }
            }
        }
        Self { dense, sparse }
    }

    #[inline]
    fn get(&self, number: u32) -> Option<usize> {
        match self.dense.get(number as usize) {
            Some(slot) => slot.map(usize::from),
            None if self.sparse.is_empty() => None,
            None => self.sparse.get(&number).copied(),
        }
    }
}

pub(crate) struct Node {
    fields: Fields,
    slots: Vec<Slot>,
    by_number: SlotIndex,
    nulls: NullBufferBuilder,
    unknown: Vec<u32>,
}

/// Whether `parse` checks values (first pass) or only collects them (append).
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Pass {
    Validate { reject_unknown: bool },
    Collect,
}

impl Node {
    pub fn new(message: &MessageDescriptor, fields: &Fields) -> Result<Node, String> {
        let mut slots = Vec::with_capacity(fields.len());
        let mut numbers = Vec::new();
        for target in fields {
            let slot = match message.get_field_by_name(target.name()) {
                Some(field) => {
                    numbers.push((field.number(), slots.len()));
                    Slot {
                        presence: field.supports_presence(),
                        repeated: field.is_list() || field.is_map(),
                        column: Column::for_field(&field, target)
                            .map_err(|e| format!("{}: {e}", target.name()))?,
                        last: None,
                        all: Vec::new(),
                    }
                }
                None => Slot {
                    presence: true,
                    repeated: false,
                    column: Column::null(target.data_type()),
                    last: None,
                    all: Vec::new(),
                },
            };
            slots.push(slot);
        }
        Ok(Node {
            fields: fields.clone(),
            slots,
            by_number: SlotIndex::new(&numbers),
            nulls: NullBufferBuilder::new(0),
            unknown: Vec::new(),
        })
    }

    /// Reads the fields of one message into the slots.
    pub fn parse(&mut self, buf: &[u8], pass: Pass) -> Result<(), Fail> {
        for slot in &mut self.slots {
            slot.last = None;
            slot.all.clear();
        }
        self.unknown.clear();
        let mut reader = FieldReader::new(buf);
        while let Some((number, raw)) = reader.next_field().map_err(Fail::malformed)? {
            let Some(index) = self.by_number.get(number) else {
                self.unknown.push(number);
                continue;
            };
            let slot = &mut self.slots[index];
            if let Pass::Validate { reject_unknown } = pass {
                slot.column.validate(raw, buf, reject_unknown)?;
            }
            if slot.repeated {
                slot.all.push(raw);
            } else {
                slot.last = Some(raw);
            }
        }
        if matches!(pass, Pass::Validate { reject_unknown: true }) && !self.unknown.is_empty() {
            return Err(Fail::Unknown(std::mem::take(&mut self.unknown)));
        }
        Ok(())
    }

    /// Validates a nested message (its slots are reused by the next `append_present`).
    pub fn validate(&mut self, buf: &[u8], reject_unknown: bool) -> Result<(), Fail> {
        self.parse(buf, Pass::Validate { reject_unknown })
    }

    /// The occurrences `parse` kept for a field number (the last one for singular fields).
    pub fn occurrences(&self, number: u32) -> Vec<Raw> {
        match self.by_number.get(number).map(|i| &self.slots[i]) {
            Some(slot) if slot.repeated => slot.all.clone(),
            Some(slot) => slot.last.into_iter().collect(),
            None => Vec::new(),
        }
    }

    /// Appends the parsed message as one row.
    pub fn append_parsed(&mut self, buf: &[u8]) -> Result<(), String> {
        for slot in &mut self.slots {
            let Slot { presence, repeated, column, last, all } = slot;
            if *repeated {
                column.append_repeated(all, buf)?;
            } else {
                match last {
                    Some(raw) => column.append(*raw, buf)?,
                    None => column.append_absent(*presence)?,
                }
            }
        }
        self.nulls.append_non_null();
        Ok(())
    }

    /// Appends a nested message that is present.
    pub fn append_present(&mut self, buf: &[u8]) -> Result<(), String> {
        self.parse(buf, Pass::Collect).map_err(|f| f.to_string())?;
        self.append_parsed(buf)
    }

    /// Appends a null struct (every child gets a placeholder).
    pub fn append_null(&mut self) -> Result<(), String> {
        for slot in &mut self.slots {
            slot.column.append_null()?;
        }
        self.nulls.append_null();
        Ok(())
    }

    /// The finished columns (top level); the node starts over empty.
    pub fn finish_columns(&mut self) -> Result<Vec<ArrayRef>, String> {
        self.nulls.finish();
        self.slots.iter_mut().map(|s| s.column.finish()).collect()
    }

    pub fn finish_struct(&mut self) -> Result<StructArray, String> {
        let nulls = self.nulls.finish();
        let children = self.slots.iter_mut().map(|s| s.column.finish()).collect::<Result<Vec<_>, _>>()?;
        StructArray::try_new(self.fields.clone(), children, nulls).map_err(|e| e.to_string())
    }

    /// Rows appended and not yet finished.
    pub fn len(&self) -> usize {
        self.nulls.len()
    }
}
