//! Weaviate's gRPC `Filters` message translated into the store's [`Filter`]: equality on a
//! property or the id, and/or. Every other operator, target and value kind is refused by name.

use tonic::Status;

use super::pb;
use super::status::unsupported;
use crate::store::query::{Filter, Operand, Target};

use pb::filter_target::Target as FilterTargetKind;
use pb::filters::{Operator, TestValue};

/// The store's filter for a request's `filters`.
pub(crate) fn from_proto(filter: &pb::Filters) -> Result<Filter, Status> {
    let operator = Operator::try_from(filter.operator).map_err(|_| {
        Status::invalid_argument(format!("unknown filter operator {}", filter.operator))
    })?;
    match operator {
        Operator::And | Operator::Or => {
            let operands = filter
                .filters
                .iter()
                .map(from_proto)
                .collect::<Result<Vec<_>, _>>()?;
            Ok(if operator == Operator::And {
                Filter::And(operands)
            } else {
                Filter::Or(operands)
            })
        }
        Operator::Equal => Ok(Filter::Equal(target(filter)?, operand(filter)?)),
        Operator::Unspecified => Err(Status::invalid_argument("a filter needs an operator")),
        other => Err(unsupported(&format!(
            "the {} filter operator",
            operator_name(other)
        ))),
    }
}

/// The operator as the clients name it (`Filter.by_property(..).not_equal(..)` is `NotEqual`).
fn operator_name(operator: Operator) -> &'static str {
    match operator {
        Operator::Unspecified => "unspecified",
        Operator::Equal => "Equal",
        Operator::NotEqual => "NotEqual",
        Operator::GreaterThan => "GreaterThan",
        Operator::GreaterThanEqual => "GreaterThanEqual",
        Operator::LessThan => "LessThan",
        Operator::LessThanEqual => "LessThanEqual",
        Operator::And => "And",
        Operator::Or => "Or",
        Operator::WithinGeoRange => "WithinGeoRange",
        Operator::Like => "Like",
        Operator::IsNull => "IsNull",
        Operator::ContainsAny => "ContainsAny",
        Operator::ContainsAll => "ContainsAll",
        Operator::ContainsNone => "ContainsNone",
        Operator::Not => "Not",
    }
}

/// The property a filter compares: `target.property`, or the deprecated one-element `on` path.
// `on` is deprecated in the protos but still what older clients send.
#[allow(deprecated)]
fn target(filter: &pb::Filters) -> Result<Target, Status> {
    let name = match &filter.target {
        Some(pb::FilterTarget {
            target: Some(FilterTargetKind::Property(name)),
        }) => name.as_str(),
        Some(pb::FilterTarget { target: Some(_) }) => {
            return Err(unsupported("filtering on cross-references"))
        }
        Some(pb::FilterTarget { target: None }) | None => match filter.on.as_slice() {
            [name] => name.as_str(),
            [] => return Err(Status::invalid_argument("a filter needs a target property")),
            _ => return Err(unsupported("filtering on cross-references")),
        },
    };
    match name {
        "_id" => Ok(Target::Id),
        "_creationTimeUnix" | "_lastUpdateTimeUnix" => {
            Err(unsupported(&format!("filtering on {name}")))
        }
        "" => Err(Status::invalid_argument("a filter needs a target property")),
        _ => Ok(Target::Property(name.to_owned())),
    }
}

fn operand(filter: &pb::Filters) -> Result<Operand, Status> {
    match &filter.test_value {
        Some(TestValue::ValueText(text)) => Ok(Operand::Text(text.clone())),
        Some(TestValue::ValueInt(value)) => Ok(Operand::Int(*value)),
        Some(TestValue::ValueNumber(value)) => Ok(Operand::Number(*value)),
        Some(TestValue::ValueBoolean(value)) => Ok(Operand::Boolean(*value)),
        Some(
            TestValue::ValueTextArray(_)
            | TestValue::ValueIntArray(_)
            | TestValue::ValueNumberArray(_)
            | TestValue::ValueBooleanArray(_),
        ) => Err(unsupported("filtering with a list of values")),
        Some(TestValue::ValueGeo(_)) => Err(unsupported("filtering on geo coordinates")),
        None => Err(Status::invalid_argument("the filter has no value")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tonic::Code;

    fn equal(property: &str, value: TestValue) -> pb::Filters {
        pb::Filters {
            operator: Operator::Equal as i32,
            target: Some(pb::FilterTarget {
                target: Some(FilterTargetKind::Property(property.into())),
            }),
            test_value: Some(value),
            ..Default::default()
        }
    }

    #[test]
    #[allow(deprecated)]
    fn translates_equality_and_combinations() {
        let count = equal("count", TestValue::ValueInt(3));
        let done = equal("done", TestValue::ValueBoolean(true));
        let id = equal("_id", TestValue::ValueText("x".into()));
        let both = pb::Filters {
            operator: Operator::And as i32,
            filters: vec![count.clone(), done],
            ..Default::default()
        };
        let either = pb::Filters {
            operator: Operator::Or as i32,
            filters: vec![both, id],
            ..Default::default()
        };
        assert_eq!(
            from_proto(&either).unwrap(),
            Filter::Or(vec![
                Filter::And(vec![
                    Filter::Equal(Target::Property("count".into()), Operand::Int(3)),
                    Filter::Equal(Target::Property("done".into()), Operand::Boolean(true)),
                ]),
                Filter::Equal(Target::Id, Operand::Text("x".into())),
            ])
        );
        // The deprecated path form.
        let legacy = pb::Filters {
            operator: Operator::Equal as i32,
            on: vec!["price".into()],
            test_value: Some(TestValue::ValueNumber(1.5)),
            ..Default::default()
        };
        assert_eq!(
            from_proto(&legacy).unwrap(),
            Filter::Equal(Target::Property("price".into()), Operand::Number(1.5))
        );
    }

    #[test]
    fn refuses_what_the_store_cannot_answer_by_name() {
        let mut not_equal = equal("count", TestValue::ValueInt(3));
        not_equal.operator = Operator::NotEqual as i32;
        let mut like = equal("title", TestValue::ValueText("a*".into()));
        like.operator = Operator::Like as i32;
        let list = equal(
            "count",
            TestValue::ValueIntArray(pb::IntArray { values: vec![1] }),
        );
        let reference = pb::Filters {
            operator: Operator::Equal as i32,
            target: Some(pb::FilterTarget {
                target: Some(FilterTargetKind::Count(pb::FilterReferenceCount {
                    on: "ref".into(),
                })),
            }),
            test_value: Some(TestValue::ValueInt(1)),
            ..Default::default()
        };
        let created = equal("_creationTimeUnix", TestValue::ValueText("1".into()));
        let cases = [
            (not_equal, "the NotEqual filter operator"),
            (like, "the Like filter operator"),
            (list, "filtering with a list of values"),
            (reference, "filtering on cross-references"),
            (created, "filtering on _creationTimeUnix"),
        ];
        for (filter, expected) in cases {
            let status = from_proto(&filter).unwrap_err();
            assert_eq!(status.code(), Code::Unimplemented, "{expected}");
            assert_eq!(
                status.message(),
                format!("{expected} is not supported by the embedded store")
            );
        }
        let no_value = pb::Filters {
            test_value: None,
            ..equal("count", TestValue::ValueInt(1))
        };
        assert_eq!(
            from_proto(&no_value).unwrap_err().code(),
            Code::InvalidArgument
        );
        let no_operator = pb::Filters::default();
        assert_eq!(
            from_proto(&no_operator).unwrap_err().code(),
            Code::InvalidArgument
        );
    }
}
