//! A `filter` job (spec §13.7): the items of its input that pass its `where`, each seen as
//! `${item}` with its `${index}`, in their order. A single value that is not a list is kept or
//! not: null when it does not pass (the original fails with `list index out of range`, OD27).

use serde_json::Value;

use crate::binding::operators::Filter;
use crate::binding::{BindingError, Scope};

/// What `condition` keeps of `input` (everything, without one).
pub(super) fn kept(
    input: Value,
    condition: Option<&Filter>,
    scope: &Scope,
) -> Result<Value, BindingError> {
    let Some(condition) = condition else {
        return Ok(input);
    };
    let passes = |item: &Value, index: usize| {
        let index = Value::from(index);
        condition.holds(&scope.clone().with("item", item).with("index", &index))
    };
    match input {
        Value::Array(items) => {
            let mut kept = Vec::with_capacity(items.len());
            for (index, item) in items.into_iter().enumerate() {
                if passes(&item, index)? {
                    kept.push(item);
                }
            }
            Ok(Value::Array(kept))
        }
        single => Ok(if passes(&single, 0)? {
            single
        } else {
            Value::Null
        }),
    }
}
