diesel::table! {
    idempotency_keys (caller, route, idempotency_key) {
        caller -> Text,
        route -> Text,
        idempotency_key -> Text,
        request_hash -> Text,
        state -> Text,
        locked_until -> Nullable<Timestamp>,
        response_status -> Nullable<Integer>,
        response_body -> Nullable<Text>,
        created_at -> Timestamp,
        expires_at -> Timestamp,
    }
}
