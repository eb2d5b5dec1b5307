//! Departments and the organisation tree.

use std::collections::BTreeMap;

/// A department code: 1–16 of `[A-Z0-9_-]` (upper-cased).
pub fn parse_code(raw: &str) -> Result<String, String> {
    let code = raw.trim().to_ascii_uppercase();
    if code.is_empty() || code.len() > 16 {
        return Err("must be 1 to 16 characters".to_owned());
    }
    if !code
        .chars()
        .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_' || c == '-')
    {
        return Err("may contain only A-Z, 0-9, _ and -".to_owned());
    }
    Ok(code)
}

/// Whether putting `department` under `new_parent` would close a cycle: the new parent
/// is the department itself or one of its descendants. `parent_of` walks the tree.
pub fn creates_cycle(
    department: &str,
    new_parent: &str,
    parent_of: impl Fn(&str) -> Option<String>,
) -> bool {
    let mut current = Some(new_parent.to_owned());
    let mut steps = 0;
    while let Some(id) = current {
        if id == department {
            return true;
        }
        steps += 1;
        if steps > 10_000 {
            // A tree deeper than this is already broken; refuse rather than loop.
            return true;
        }
        current = parent_of(&id);
    }
    false
}

/// One department in a tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TreeNode<T> {
    /// The department.
    pub item: T,
    /// Its sub-departments.
    pub children: Vec<TreeNode<T>>,
}

/// Arranges departments (id, parent id, value) into trees, children in input order;
/// `root` limits the result to one subtree.
pub fn build_tree<T: Clone>(
    items: &[(String, Option<String>, T)],
    root: Option<&str>,
) -> Vec<TreeNode<T>> {
    let mut children: BTreeMap<Option<&str>, Vec<usize>> = BTreeMap::new();
    for (index, (_, parent, _)) in items.iter().enumerate() {
        children.entry(parent.as_deref()).or_default().push(index);
    }
    fn grow<T: Clone>(
        index: usize,
        items: &[(String, Option<String>, T)],
        children: &BTreeMap<Option<&str>, Vec<usize>>,
        depth: usize,
    ) -> TreeNode<T> {
        let (id, _, item) = &items[index];
        let kids = if depth > 1_000 {
            Vec::new()
        } else {
            children
                .get(&Some(id.as_str()))
                .map(|kids| {
                    kids.iter()
                        .map(|kid| grow(*kid, items, children, depth + 1))
                        .collect()
                })
                .unwrap_or_default()
        };
        TreeNode {
            item: item.clone(),
            children: kids,
        }
    }
    match root {
        Some(root) => items
            .iter()
            .position(|(id, _, _)| id == root)
            .map(|index| vec![grow(index, items, &children, 0)])
            .unwrap_or_default(),
        None => children
            .get(&None)
            .map(|roots| {
                roots
                    .iter()
                    .map(|index| grow(*index, items, &children, 0))
                    .collect()
            })
            .unwrap_or_default(),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    #[test]
    fn moving_a_department_under_its_own_descendant_is_a_cycle() {
        let parents: HashMap<&str, &str> = HashMap::from([("b", "a"), ("c", "b")]);
        let parent_of = |id: &str| parents.get(id).map(|p| (*p).to_owned());
        assert!(creates_cycle("a", "c", parent_of));
        assert!(creates_cycle("a", "a", parent_of));
        assert!(!creates_cycle("c", "a", parent_of));
    }

    #[test]
    fn trees_are_built_from_parent_links() {
        let items = vec![
            ("a".to_owned(), None, "A"),
            ("b".to_owned(), Some("a".to_owned()), "B"),
            ("c".to_owned(), Some("b".to_owned()), "C"),
            ("d".to_owned(), None, "D"),
        ];
        let trees = build_tree(&items, None);
        assert_eq!(trees.len(), 2);
        assert_eq!(trees[0].children[0].children[0].item, "C");
        assert_eq!(build_tree(&items, Some("b"))[0].item, "B");
    }

    #[test]
    fn codes_are_upper_cased_and_checked() {
        assert_eq!(parse_code(" eng "), Ok("ENG".to_owned()));
        assert!(parse_code("").is_err());
        assert!(parse_code("R&D").is_err());
    }
}
