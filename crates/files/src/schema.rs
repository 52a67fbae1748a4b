diesel::table! {
    blobs (sha256) {
        sha256 -> Text,
        size -> BigInt,
        media_type -> Text,
        owners -> Integer,
        created_at -> Timestamp,
    }
}

diesel::table! {
    files (id) {
        id -> Text,
        sha256 -> Text,
        owner_module -> Text,
        account_id -> Nullable<Text>,
        name -> Text,
        media_type -> Text,
        size -> BigInt,
        created_at -> Timestamp,
        expires_at -> Nullable<Timestamp>,
    }
}

diesel::joinable!(files -> blobs (sha256));
diesel::allow_tables_to_appear_in_same_query!(blobs, files);
