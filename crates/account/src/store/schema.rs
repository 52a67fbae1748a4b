//! The account service's tables. No other service reads or writes them.

diesel::table! {
    accounts (id) {
        id -> Text,
        realm -> Text,
        kind -> Text,
        email -> Nullable<Text>,
        email_key -> Nullable<Text>,
        display_name -> Text,
        password_hash -> Nullable<Text>,
        preferred_language -> Text,
        status -> Text,
        email_verified_at -> Nullable<Timestamp>,
        totp_secret -> Nullable<Text>,
        totp_enabled_at -> Nullable<Timestamp>,
        totp_last_step -> Nullable<BigInt>,
        register_number -> Nullable<Text>,
        created_at -> Timestamp,
        updated_at -> Timestamp,
        last_login_at -> Nullable<Timestamp>,
        deletion_flagged_at -> Nullable<Timestamp>,
        deactivated_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    profiles (account_id) {
        account_id -> Text,
        given_name -> Nullable<Text>,
        family_name -> Nullable<Text>,
        date_of_birth -> Nullable<Text>,
        street -> Nullable<Text>,
        house_number -> Nullable<Text>,
        postal_code -> Nullable<Text>,
        city -> Nullable<Text>,
        country -> Nullable<Text>,
        phone -> Nullable<Text>,
        verified_fields -> Text,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    organisation_members (organisation_id, account_id) {
        organisation_id -> Text,
        account_id -> Text,
        role -> Text,
        added_at -> Timestamp,
    }
}

diesel::table! {
    email_tokens (token_hash) {
        token_hash -> Text,
        account_id -> Text,
        purpose -> Text,
        new_email -> Nullable<Text>,
        created_at -> Timestamp,
        expires_at -> Timestamp,
        used_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    sessions (id) {
        id -> Text,
        account_id -> Text,
        acr -> Text,
        amr -> Text,
        auth_time -> Timestamp,
        created_at -> Timestamp,
        last_seen_at -> Timestamp,
        revoked_at -> Nullable<Timestamp>,
        revoke_reason -> Nullable<Text>,
        user_agent -> Nullable<Text>,
        address -> Nullable<Text>,
    }
}

diesel::table! {
    refresh_tokens (token_hash) {
        token_hash -> Text,
        session_id -> Text,
        created_at -> Timestamp,
        expires_at -> Timestamp,
        used_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    recovery_codes (account_id, code_hash) {
        account_id -> Text,
        code_hash -> Text,
        created_at -> Timestamp,
        used_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    pending_totp (account_id) {
        account_id -> Text,
        secret -> Text,
        created_at -> Timestamp,
    }
}

diesel::table! {
    login_throttle (login_key) {
        login_key -> Text,
        failures -> Integer,
        day -> Text,
        last_failure_at -> Timestamp,
        locked_until -> Timestamp,
    }
}

diesel::table! {
    consents (id) {
        id -> Text,
        account_id -> Text,
        recipient_kind -> Text,
        recipient_id -> Text,
        attributes -> Text,
        granted_at -> Timestamp,
        revoked_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    security_events (id) {
        id -> Text,
        account_id -> Text,
        at -> Timestamp,
        kind -> Text,
        address -> Nullable<Text>,
        user_agent -> Nullable<Text>,
    }
}

diesel::table! {
    staff_roles (account_id, role, unit) {
        account_id -> Text,
        role -> Text,
        unit -> Text,
    }
}

diesel::table! {
    api_clients (id) {
        id -> Text,
        name -> Text,
        scopes -> Text,
        secret_hash -> Text,
        previous_secret_hash -> Nullable<Text>,
        previous_valid_until -> Nullable<Timestamp>,
        created_at -> Timestamp,
        disabled_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    eid_links (issuer, subject) {
        issuer -> Text,
        subject -> Text,
        account_id -> Text,
        linked_at -> Timestamp,
    }
}

diesel::table! {
    oidc_states (state) {
        state -> Text,
        code_verifier -> Text,
        nonce -> Text,
        redirect_uri -> Text,
        account_id -> Nullable<Text>,
        created_at -> Timestamp,
        expires_at -> Timestamp,
        used_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    eid_assertions (session_id) {
        session_id -> Text,
        account_id -> Text,
        issuer -> Text,
        subject -> Text,
        acr -> Nullable<Text>,
        id_token -> Text,
        authenticated_at -> Timestamp,
    }
}

diesel::table! {
    organisation_invitations (id) {
        id -> Text,
        organisation_id -> Text,
        email -> Text,
        email_key -> Text,
        role -> Text,
        invited_by -> Text,
        status -> Text,
        created_at -> Timestamp,
        expires_at -> Timestamp,
        answered_at -> Nullable<Timestamp>,
        answered_by -> Nullable<Text>,
    }
}

diesel::joinable!(refresh_tokens -> sessions (session_id));
diesel::joinable!(sessions -> accounts (account_id));
diesel::allow_tables_to_appear_in_same_query!(
    refresh_tokens,
    sessions,
    accounts,
    organisation_members,
    organisation_invitations
);

diesel::table! {
    delivery_consents (id) {
        id -> Text,
        account_id -> Text,
        granted_at -> Timestamp,
        granted_via -> Text,
        revoked_at -> Nullable<Timestamp>,
    }
}
