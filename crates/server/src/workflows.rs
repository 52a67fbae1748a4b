//! The workflows, loaded at start-up and by `amtsweg workflow check`: checked against the staff roles the modules
//! declare and against the procedures that name them. Whether a procedure names an existing workflow is the
//! workflows' question, not the catalogue's.

use std::path::Path;

use amtsweg_catalogue::Catalogue;
use amtsweg_workflow::Workflows;

/// The staff roles declared by the modules.
pub fn known_roles() -> Vec<&'static str> {
    crate::access::access()
        .roles()
        .iter()
        .map(|role| role.name)
        .collect()
}

/// Loads the workflows of `dir` (the shipped ones when `None`) and checks that every procedure's `workflow:`
/// exists. Every problem is returned, one line each (`FILE: PATH: REASON`).
pub fn load(dir: Option<&Path>, catalogue: &Catalogue) -> Result<Workflows, Vec<String>> {
    let roles = known_roles();
    let loaded = match dir {
        Some(dir) => amtsweg_workflow::load_dir(dir, &roles),
        None => amtsweg_workflow::load_shipped(&roles),
    };
    let workflows = loaded.map_err(|errors| errors.iter().map(ToString::to_string).collect::<Vec<_>>())?;
    let missing = workflows.missing_for(
        catalogue
            .iter()
            .map(|procedure| (procedure.id(), procedure.procedure.workflow.as_str())),
    );
    let problems: Vec<String> = missing
        .into_iter()
        .chain(amtsweg_applications::check_workflows(&workflows))
        .chain(amtsweg_applications::check_prefill(catalogue))
        .collect();
    if problems.is_empty() {
        Ok(workflows)
    } else {
        Err(problems)
    }
}
