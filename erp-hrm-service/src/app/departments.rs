//! Department use cases.

use std::collections::HashMap;

use erp_kit::auth::AuthContext;
use erp_proto::erp::common::v1::{PageRequest, PageResponse};
use sea_orm::TransactionTrait;

use super::Hrm;
use crate::{
    domain::department::{build_tree, creates_cycle},
    error::{Error, Result},
    store::{
        self,
        departments::{DepartmentChanges, NewDepartment},
        entities::department,
    },
};

/// A department with its sub-departments and headcount.
#[derive(Debug, Clone)]
pub struct DepartmentNode {
    /// The department.
    pub department: department::Model,
    /// Active employees directly in it.
    pub employee_count: u64,
    /// Sub-departments.
    pub children: Vec<DepartmentNode>,
}

/// Validated changes to a department.
#[derive(Debug, Default)]
pub struct DepartmentUpdate {
    /// New name.
    pub name: Option<String>,
    /// New parent (`Some(None)`: top level).
    pub parent_id: Option<Option<String>>,
    /// New head (`Some(None)`: none).
    pub head_employee_id: Option<Option<String>>,
    /// Version read (0: no check).
    pub expected_version: i64,
}

impl Hrm {
    async fn check_references(
        &self,
        caller: &AuthContext,
        parent: Option<&str>,
        head: Option<&str>,
    ) -> Result<()> {
        let tenant = &caller.tenant_id;
        if let Some(parent) = parent {
            store::departments::get(&self.db, tenant, parent)
                .await
                .map_err(|_| Error::field("parent_department_id", "no such department"))?;
        }
        if let Some(head) = head {
            store::employees::get(&self.db, tenant, head)
                .await
                .map_err(|_| Error::field("head_employee_id", "no such employee"))?;
        }
        Ok(())
    }

    /// Creates a department.
    pub async fn create_department(
        &self,
        caller: &AuthContext,
        new: NewDepartment,
    ) -> Result<department::Model> {
        self.check_references(
            caller,
            new.parent_id.as_deref(),
            new.head_employee_id.as_deref(),
        )
        .await?;
        // The parent is held while the child is added, so a delete of the parent at the
        // same moment cannot leave the child under a department that no longer exists.
        let txn = self.db.begin().await?;
        if let Some(parent) = new.parent_id.as_deref() {
            store::departments::hold(&txn, &caller.tenant_id, parent, "parent_department_id")
                .await?;
        }
        if let Some(head) = new.head_employee_id.as_deref() {
            store::employees::hold(&txn, &caller.tenant_id, head, "head_employee_id").await?;
        }
        let created =
            store::departments::insert(&txn, &caller.tenant_id, new, &caller.user_id).await?;
        txn.commit().await?;
        Ok(created)
    }

    /// A department.
    pub async fn get_department(
        &self,
        caller: &AuthContext,
        id: &str,
    ) -> Result<department::Model> {
        store::departments::get(&self.db, &caller.tenant_id, id).await
    }

    /// A page of departments.
    pub async fn list_departments(
        &self,
        caller: &AuthContext,
        parent: Option<&str>,
        page: Option<&PageRequest>,
    ) -> Result<(Vec<department::Model>, PageResponse)> {
        store::departments::list(&self.db, &caller.tenant_id, &self.page_tokens, parent, page).await
    }

    /// The organisation chart, or one subtree of it.
    pub async fn department_tree(
        &self,
        caller: &AuthContext,
        root: Option<&str>,
    ) -> Result<Vec<DepartmentNode>> {
        let tenant = &caller.tenant_id;
        if let Some(root) = root {
            store::departments::get(&self.db, tenant, root).await?;
        }
        let departments = store::departments::all(&self.db, tenant).await?;
        let mut counts = HashMap::new();
        for department in &departments {
            counts.insert(
                department.id.clone(),
                store::departments::active_members(&self.db, tenant, &department.id).await?,
            );
        }
        let items: Vec<(String, Option<String>, department::Model)> = departments
            .into_iter()
            .map(|department| {
                (
                    department.id.clone(),
                    department.parent_id.clone(),
                    department,
                )
            })
            .collect();
        fn convert(
            node: crate::domain::department::TreeNode<department::Model>,
            counts: &HashMap<String, u64>,
        ) -> DepartmentNode {
            DepartmentNode {
                employee_count: counts.get(&node.item.id).copied().unwrap_or(0),
                children: node
                    .children
                    .into_iter()
                    .map(|child| convert(child, counts))
                    .collect(),
                department: node.item,
            }
        }
        Ok(build_tree(&items, root)
            .into_iter()
            .map(|node| convert(node, &counts))
            .collect())
    }

    /// Renames or moves a department; moves that would create a cycle are refused (checked
    /// and written under a lock on the tenant's departments).
    pub async fn update_department(
        &self,
        caller: &AuthContext,
        id: &str,
        update: DepartmentUpdate,
    ) -> Result<department::Model> {
        let tenant = &caller.tenant_id;
        store::departments::get(&self.db, tenant, id).await?;
        let new_parent = update.parent_id.clone().flatten();
        self.check_references(
            caller,
            new_parent.as_deref(),
            update.head_employee_id.clone().flatten().as_deref(),
        )
        .await?;
        let txn = self.db.begin().await?;
        if let Some(Some(head)) = &update.head_employee_id {
            store::employees::hold(&txn, tenant, head, "head_employee_id").await?;
        }
        if let Some(parent) = &new_parent {
            let parents: HashMap<String, Option<String>> =
                store::departments::all_locked(&txn, tenant)
                    .await?
                    .into_iter()
                    .map(|department| (department.id, department.parent_id))
                    .collect();
            // Deleted since the reference check, before this move took the lock.
            if !parents.contains_key(parent.as_str()) {
                return Err(Error::field("parent_department_id", "no such department"));
            }
            if creates_cycle(id, parent, |node| parents.get(node).cloned().flatten()) {
                return Err(Error::FailedPrecondition {
                    reason: "ERP:HRM:DEPARTMENT_CYCLE",
                    message: "a department cannot move under itself or one of its sub-departments"
                        .to_owned(),
                });
            }
        }
        let updated = store::departments::update(
            &txn,
            tenant,
            id,
            update.expected_version,
            DepartmentChanges {
                name: update.name,
                parent_id: update.parent_id,
                head_employee_id: update.head_employee_id,
            },
            &caller.user_id,
        )
        .await?;
        txn.commit().await?;
        Ok(updated)
    }

    /// Deletes an empty department.
    pub async fn delete_department(&self, caller: &AuthContext, id: &str) -> Result<()> {
        // Under the moves' lock: no department moves under this one while it goes.
        let txn = self.db.begin().await?;
        store::departments::all_locked(&txn, &caller.tenant_id).await?;
        store::departments::delete(&txn, &caller.tenant_id, id).await?;
        txn.commit().await?;
        Ok(())
    }
}
