diesel::table! {
    payments (id) {
        id -> Text,
        transaction_number -> Text,
        owner_ref -> Text,
        unit_id -> Text,
        provider -> Text,
        kassenzeichen -> Nullable<Text>,
        provider_ref -> Nullable<Text>,
        amount_cents -> BigInt,
        purpose -> Text,
        description -> Text,
        bookings -> Text,
        due_on -> Nullable<Text>,
        state -> Text,
        paypage_url -> Nullable<Text>,
        attempt_started_at -> Nullable<Timestamp>,
        next_check_at -> Nullable<Timestamp>,
        checks -> Integer,
        paid_cents -> Nullable<BigInt>,
        paid_at -> Nullable<Timestamp>,
        superseded_by -> Nullable<Text>,
        version -> BigInt,
        created_at -> Timestamp,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    payment_steps (payment_id, seq) {
        payment_id -> Text,
        seq -> Integer,
        from_state -> Nullable<Text>,
        to_state -> Text,
        reason -> Text,
        note -> Nullable<Text>,
        actor -> Text,
        at -> Timestamp,
    }
}

diesel::joinable!(payment_steps -> payments (payment_id));
diesel::allow_tables_to_appear_in_same_query!(payments, payment_steps);

diesel::table! {
    payment_refunds (id) {
        id -> Text,
        payment_id -> Text,
        amount_cents -> BigInt,
        reason -> Text,
        recorded_by -> Text,
        recorded_at -> Timestamp,
    }
}

diesel::joinable!(payment_refunds -> payments (payment_id));
diesel::allow_tables_to_appear_in_same_query!(payments, payment_refunds);
