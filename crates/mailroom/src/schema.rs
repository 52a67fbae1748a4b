diesel::table! {
    mailbox_messages (id) {
        id -> Text,
        mailbox -> Text,
        unit_id -> Text,
        direction -> Text,
        kind -> Text,
        thread_id -> Text,
        in_reply_to -> Nullable<Text>,
        subject -> Text,
        body -> Text,
        case_ref -> Nullable<Text>,
        case_number -> Nullable<Text>,
        required_level -> Text,
        author -> Nullable<Text>,
        created_at -> Timestamp,
        read_at -> Nullable<Timestamp>,
        archived_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    mailbox_attachments (id) {
        id -> Text,
        message_id -> Text,
        file_id -> Text,
        holder -> Text,
        name -> Text,
        media_type -> Text,
        size -> BigInt,
        sha256 -> Text,
        seal -> Nullable<Text>,
        created_at -> Timestamp,
    }
}

diesel::table! {
    deliveries (id) {
        id -> Text,
        owner_ref -> Text,
        case_ref -> Nullable<Text>,
        case_number -> Nullable<Text>,
        recipient -> Text,
        mailbox -> Text,
        unit_id -> Text,
        rule -> Text,
        starts -> Text,
        days -> Integer,
        expires_after_days -> Nullable<Integer>,
        channel -> Text,
        state -> Text,
        message_id -> Nullable<Text>,
        attachment_id -> Nullable<Text>,
        required_level -> Text,
        consent_id -> Nullable<Text>,
        provided_at -> Nullable<Timestamp>,
        notification_mail_id -> Nullable<Text>,
        notification_address -> Nullable<Text>,
        notified_at -> Nullable<Timestamp>,
        first_retrieved_at -> Nullable<Timestamp>,
        deemed_notified_on -> Nullable<Text>,
        deemed_recorded_at -> Nullable<Timestamp>,
        expired_at -> Nullable<Timestamp>,
        fallback_reason -> Nullable<Text>,
        letter_id -> Nullable<Text>,
        posted_on -> Nullable<Text>,
        created_at -> Timestamp,
        served_on -> Nullable<Text>,
    }
}

diesel::table! {
    delivery_documents (delivery_id) {
        delivery_id -> Text,
        file_id -> Text,
        holder -> Text,
        name -> Text,
        sha256 -> Text,
        pages -> Nullable<Integer>,
    }
}

diesel::table! {
    print_batches (id) {
        id -> Text,
        created_by -> Text,
        created_at -> Timestamp,
        letters -> Integer,
        posted_on -> Nullable<Text>,
        posted_by -> Nullable<Text>,
        posted_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    print_letters (id) {
        id -> Text,
        delivery_id -> Text,
        unit_id -> Text,
        reason -> Text,
        batch_id -> Nullable<Text>,
        created_at -> Timestamp,
        kind -> Text,
    }
}

diesel::joinable!(delivery_documents -> deliveries (delivery_id));
diesel::allow_tables_to_appear_in_same_query!(deliveries, delivery_documents, print_letters, print_batches);

diesel::table! {
    inbound_items (id) {
        id -> Text,
        channel -> Text,
        submitted_by -> Text,
        sender -> Text,
        received_on -> Text,
        reference -> Nullable<Text>,
        page_count -> Nullable<Integer>,
        file_id -> Text,
        holder -> Text,
        name -> Text,
        sha256 -> Text,
        state -> Text,
        routed_by -> Nullable<Text>,
        unit_id -> Nullable<Text>,
        case_ref -> Nullable<Text>,
        case_number -> Nullable<Text>,
        created_at -> Timestamp,
        routed_at -> Nullable<Timestamp>,
    }
}
