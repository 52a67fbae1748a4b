diesel::table! {
    integration_inbox (application_id) {
        application_id -> Text,
        procedure_id -> Text,
        case_number -> Text,
        submitted_at -> Timestamp,
        position -> BigInt,
    }
}

diesel::table! {
    integration_acknowledgements (client_id, application_id) {
        application_id -> Text,
        client_id -> Text,
        outcome -> Text,
        problems -> Nullable<Text>,
        acknowledged_at -> Timestamp,
    }
}

diesel::table! {
    webhook_subscriptions (id) {
        id -> Text,
        client_id -> Text,
        url -> Text,
        event_types -> Text,
        procedures -> Text,
        scheme -> Text,
        secret -> Text,
        status -> Text,
        disabled_reason -> Nullable<Text>,
        starts_after -> BigInt,
        created_at -> Timestamp,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    webhook_deliveries (id) {
        id -> Text,
        subscription_id -> Text,
        event_id -> Text,
        position -> BigInt,
        status -> Text,
        attempts -> Integer,
        last_status -> Nullable<Integer>,
        last_error -> Nullable<Text>,
        last_attempt_at -> Nullable<Timestamp>,
        delivered_at -> Nullable<Timestamp>,
        replay -> Bool,
        created_at -> Timestamp,
    }
}

diesel::table! {
    integration_cursors (name) {
        name -> Text,
        position -> BigInt,
        updated_at -> Timestamp,
    }
}

diesel::allow_tables_to_appear_in_same_query!(integration_inbox, integration_acknowledgements);
diesel::allow_tables_to_appear_in_same_query!(webhook_subscriptions, webhook_deliveries);
