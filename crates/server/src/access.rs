//! The staff roles and client scopes of every module, registered here at composition like the personal-data
//! sections. The account service grants only what is declared; the OpenAPI document lists the scopes.

use amtsweg_auth::{Access, RoleDefinition, RoleReach};

/// Everything grantable.
pub fn access() -> Access {
    amtsweg_account::access()
        .merge(casework())
        .merge(amtsweg_payment::access())
        .merge(amtsweg_mailroom::access())
        .merge(amtsweg_integration::access())
}

/// The roles of case work (checked by the applications module).
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
}
