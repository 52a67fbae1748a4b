//! The staff roles and client scopes of every module, registered here at composition like the personal-data
//! sections. The account service grants only what is declared; the OpenAPI document lists the scopes.

use amtsweg_auth::{Access, RoleDefinition, RoleReach, ScopeDefinition};

/// Everything grantable.
pub fn access() -> Access {
    amtsweg_account::access()
        .merge(casework())
        .merge(amtsweg_payment::access())
        .merge(amtsweg_mailroom::access())
}

/// The roles and scopes of case work and the specialised procedures' API (issues 8 and 11). They are granted
/// already — staff and clients are set up before the routes that check them exist — and move into the
/// applications and integration crates with those.
fn casework() -> Access {
    Access::new()
        .role(RoleDefinition {
            name: "case_worker",
            reach: RoleReach::Units,
            description: "Processes the applications of a unit",
        })
        .role(RoleDefinition {
            name: "supervisor",
            reach: RoleReach::Units,
            description: "Oversees a unit's queues and gives second signatures",
        })
        .role(RoleDefinition {
            name: "catalogue_admin",
            reach: RoleReach::Units,
            description: "Maintains the procedures of a unit",
        })
        .scope(ScopeDefinition {
            name: "procedures:read",
            per_procedure: false,
            description: "Read the catalogue",
        })
        .scope(ScopeDefinition {
            name: "applications:read",
            per_procedure: true,
            description: "Read applications of a procedure",
        })
        .scope(ScopeDefinition {
            name: "applications:write",
            per_procedure: true,
            description: "Report back on applications of a procedure",
        })
}
