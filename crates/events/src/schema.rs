diesel::table! {
    events (id) {
        id -> Text,
        position -> Nullable<BigInt>,
        source -> Text,
        event_type -> Text,
        subject -> Nullable<Text>,
        time -> Timestamp,
        data -> Text,
        procedure_id -> Nullable<Text>,
    }
}

diesel::table! {
    event_sequence (id) {
        id -> Integer,
        last_position -> BigInt,
    }
}
