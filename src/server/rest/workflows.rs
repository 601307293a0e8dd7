//! `GET /workflows` and `GET /workflows/{id}/schema`.

use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::Json;
use serde::{Deserialize, Serialize};

use super::error::ApiError;
use super::{lax_bool, ApiState};
use compose::schema::Variable;
use compose::WorkflowPlan;

/// A workflow in the listing.
#[derive(Serialize)]
#[serde(untagged)]
pub enum Listed {
    Summary {
        workflow_id: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        title: Option<String>,
        #[serde(skip_serializing_if = "std::ops::Not::not")]
        default: bool,
    },
    Schema(Schema),
}

/// A workflow's schema, as the original shows it.
#[derive(Serialize)]
pub struct Schema {
    pub workflow_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    pub input: Vec<Variable>,
    pub output: Vec<Variable>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub default: bool,
}

impl From<&WorkflowPlan> for Schema {
    fn from(plan: &WorkflowPlan) -> Self {
        Self {
            workflow_id: plan.id.clone(),
            title: plan.title.clone(),
            description: plan.description.clone(),
            input: plan.input_schema.clone(),
            output: plan.output_schema.clone(),
            default: plan.default,
        }
    }
}

#[derive(Deserialize)]
pub struct ListQuery {
    #[serde(default, deserialize_with = "lax_bool::option")]
    include_schema: Option<bool>,
}

pub async fn list(
    State(state): State<ApiState>,
    Query(query): Query<ListQuery>,
) -> Json<Vec<Listed>> {
    let public = state.tasks.engine().public_workflows();
    Json(if query.include_schema.unwrap_or(false) {
        public
            .map(|w| Listed::Schema(Schema::from(w.as_ref())))
            .collect()
    } else {
        public
            .map(|w| Listed::Summary {
                workflow_id: w.id.clone(),
                title: w.title.clone(),
                default: w.default,
            })
            .collect()
    })
}

pub async fn schema(
    State(state): State<ApiState>,
    Path(id): Path<String>,
) -> Result<Json<Schema>, ApiError> {
    find(&state, &id)
        .map(|plan| Json(Schema::from(plan.as_ref())))
        .ok_or_else(|| ApiError::not_found("Workflow not found."))
}

/// A public workflow by its exact id (`__default__` is not resolved here, as in the original).
fn find(state: &ApiState, id: &str) -> Option<Arc<WorkflowPlan>> {
    state
        .tasks
        .engine()
        .public_workflows()
        .find(|w| w.id == id)
        .cloned()
}
