diesel::table! {
    portal_sessions (token_hash) {
        token_hash -> Text,
        session_id -> Text,
        csrf -> Text,
        created_at -> Timestamp,
        last_seen_at -> Timestamp,
    }
}

diesel::table! {
    portal_feedback (id) {
        id -> Text,
        page -> Nullable<Text>,
        message -> Text,
        contact -> Nullable<Text>,
        lang -> Text,
        created_at -> Timestamp,
    }
}
