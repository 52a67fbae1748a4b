//! The staff roles and client scopes there are. Each module declares the ones its routes check, and the
//! composition root registers them all — so the account service, which grants them, needs no list of the modules
//! above it.

/// Where a role applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RoleReach {
    /// Everywhere; granted with the unit `*` only.
    Global,
    /// In organisational units of the catalogue (or `*`, all of them).
    Units,
}

/// A staff role a module declares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RoleDefinition {
    pub name: &'static str,
    pub reach: RoleReach,
    pub description: &'static str,
}

/// A client scope a module declares. With `per_procedure`, it is granted as `{name}:{procedure}` (or
/// `{name}:*` for every procedure).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ScopeDefinition {
    pub name: &'static str,
    pub per_procedure: bool,
    pub description: &'static str,
}

/// All roles and scopes, merged from the modules' declarations.
#[derive(Debug, Clone, Default)]
pub struct Access {
    roles: Vec<RoleDefinition>,
    scopes: Vec<ScopeDefinition>,
}

/// A scope as granted, read against its definition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GrantedScope<'a> {
    Plain(&'a ScopeDefinition),
    /// `procedure` is `*` or a procedure id (not yet checked against the catalogue).
    PerProcedure(&'a ScopeDefinition, &'a str),
}

impl Access {
    pub fn new() -> Access {
        Access::default()
    }

    pub fn role(mut self, role: RoleDefinition) -> Access {
        self.roles.push(role);
        self
    }

    pub fn scope(mut self, scope: ScopeDefinition) -> Access {
        self.scopes.push(scope);
        self
    }

    pub fn merge(mut self, other: Access) -> Access {
        self.roles.extend(other.roles);
        self.scopes.extend(other.scopes);
        self
    }

    pub fn roles(&self) -> &[RoleDefinition] {
        &self.roles
    }

    pub fn scopes(&self) -> &[ScopeDefinition] {
        &self.scopes
    }

    pub fn find_role(&self, name: &str) -> Option<&RoleDefinition> {
        self.roles.iter().find(|role| role.name == name)
    }

    /// Reads a granted scope (`procedures:read`, `applications:read:kita-platz`); `None` if no module declared it
    /// in that form.
    pub fn read_scope<'a>(&'a self, granted: &'a str) -> Option<GrantedScope<'a>> {
        if let Some(plain) = self.scopes.iter().find(|s| !s.per_procedure && s.name == granted) {
            return Some(GrantedScope::Plain(plain));
        }
        let (name, procedure) = granted.rsplit_once(':')?;
        let definition = self.scopes.iter().find(|s| s.per_procedure && s.name == name)?;
        (!procedure.is_empty()).then_some(GrantedScope::PerProcedure(definition, procedure))
    }
}

/// Where a member of staff holds a role.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Units {
    /// Not at all.
    None,
    /// In every unit (`*`).
    All,
    /// In these units.
    Some(Vec<String>),
}

impl Units {
    pub fn contains(&self, unit: &str) -> bool {
        match self {
            Units::None => false,
            Units::All => true,
            Units::Some(units) => units.iter().any(|u| u == unit),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn access() -> Access {
        Access::new()
            .scope(ScopeDefinition {
                name: "procedures:read",
                per_procedure: false,
                description: "",
            })
            .scope(ScopeDefinition {
                name: "applications:read",
                per_procedure: true,
                description: "",
            })
    }

    #[test]
    fn scopes_are_read_against_their_definitions() {
        let access = access();
        assert!(matches!(
            access.read_scope("procedures:read"),
            Some(GrantedScope::Plain(_))
        ));
        assert!(matches!(
            access.read_scope("applications:read:kita-platz"),
            Some(GrantedScope::PerProcedure(_, "kita-platz"))
        ));
        assert!(matches!(
            access.read_scope("applications:read:*"),
            Some(GrantedScope::PerProcedure(_, "*"))
        ));
        assert_eq!(access.read_scope("applications:read"), None);
        assert_eq!(access.read_scope("applications:read:"), None);
        assert_eq!(access.read_scope("procedures:read:x"), None);
        assert_eq!(access.read_scope("alles"), None);
    }
}
