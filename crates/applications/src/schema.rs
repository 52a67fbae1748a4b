diesel::table! {
    applications (id) {
        id -> Text,
        account_id -> Text,
        on_behalf_of -> Nullable<Text>,
        procedure_id -> Text,
        procedure_version -> Integer,
        procedure_hash -> Text,
        unit_id -> Text,
        data -> Text,
        prefilled -> Text,
        status -> Text,
        case_number -> Nullable<Text>,
        workflow_id -> Nullable<Text>,
        workflow_hash -> Nullable<Text>,
        state -> Nullable<Text>,
        version -> BigInt,
        applicant_name -> Nullable<Text>,
        fee_cents -> Nullable<BigInt>,
        fee_lines -> Nullable<Text>,
        submitted_at -> Nullable<Timestamp>,
        created_at -> Timestamp,
        updated_at -> Timestamp,
        queued -> Bool,
        queued_since -> Nullable<Timestamp>,
        assignee -> Nullable<Text>,
        claimed_at -> Nullable<Timestamp>,
        service_norm_due -> Nullable<Text>,
        waiting_since -> Nullable<Timestamp>,
        payment_settled_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    application_attachments (id) {
        id -> Text,
        application_id -> Text,
        document_type -> Text,
        file_id -> Text,
        uploaded_by -> Text,
        name -> Text,
        media_type -> Text,
        size -> BigInt,
        sha256 -> Text,
        created_at -> Timestamp,
        request_id -> Nullable<Text>,
    }
}

diesel::table! {
    application_steps (application_id, seq) {
        application_id -> Text,
        seq -> Integer,
        at -> Timestamp,
        action -> Text,
        from_state -> Nullable<Text>,
        to_state -> Text,
        actor_kind -> Text,
        actor_id -> Nullable<Text>,
        comment -> Nullable<Text>,
        public -> Bool,
        event_id -> Nullable<Text>,
    }
}

diesel::table! {
    application_timers (application_id, timer_id) {
        application_id -> Text,
        timer_id -> Text,
        started_at -> Timestamp,
        due_on -> Text,
        alert_on -> Nullable<Text>,
        kind -> Text,
        reminded_at -> Nullable<Timestamp>,
    }
}

diesel::joinable!(application_attachments -> applications (application_id));
diesel::joinable!(application_steps -> applications (application_id));
diesel::joinable!(application_timers -> applications (application_id));
diesel::allow_tables_to_appear_in_same_query!(
    applications,
    application_attachments,
    application_steps,
    application_timers
);

diesel::table! {
    application_decisions (id) {
        id -> Text,
        application_id -> Text,
        result -> Text,
        reasons -> Text,
        fee_cents -> Nullable<BigInt>,
        author -> Text,
        created_at -> Timestamp,
        file_id -> Text,
        pdf_sha256 -> Text,
        data_sha256 -> Text,
        cosigned_by -> Nullable<Text>,
        cosigned_at -> Nullable<Timestamp>,
        pages -> Nullable<Integer>,
    }
}

diesel::joinable!(application_decisions -> applications (application_id));
diesel::allow_tables_to_appear_in_same_query!(applications, application_decisions);

diesel::table! {
    application_notes (id) {
        id -> Text,
        application_id -> Text,
        author -> Text,
        text -> Text,
        created_at -> Timestamp,
    }
}

diesel::joinable!(application_notes -> applications (application_id));
diesel::allow_tables_to_appear_in_same_query!(applications, application_notes);

diesel::table! {
    information_requests (id) {
        id -> Text,
        application_id -> Text,
        requested_by -> Text,
        message -> Text,
        fields -> Text,
        documents -> Text,
        due_on -> Text,
        status -> Text,
        created_at -> Timestamp,
        answer -> Nullable<Text>,
        answered_at -> Nullable<Timestamp>,
        answered_by -> Nullable<Text>,
        closed_at -> Nullable<Timestamp>,
    }
}

diesel::joinable!(information_requests -> applications (application_id));
diesel::allow_tables_to_appear_in_same_query!(applications, information_requests);

diesel::table! {
    application_receipts (application_id) {
        application_id -> Text,
        snapshot -> Text,
        file_id -> Nullable<Text>,
        pdf_sha256 -> Nullable<Text>,
        rendered_at -> Nullable<Timestamp>,
    }
}

diesel::joinable!(application_receipts -> applications (application_id));
diesel::allow_tables_to_appear_in_same_query!(applications, application_receipts);

diesel::table! {
    application_name_tokens (token, application_id) {
        token -> Text,
        application_id -> Text,
    }
}

diesel::joinable!(application_name_tokens -> applications (application_id));
diesel::allow_tables_to_appear_in_same_query!(applications, application_name_tokens);
diesel::allow_tables_to_appear_in_same_query!(application_name_tokens, application_timers);

diesel::table! {
    application_written_form (application_id) {
        application_id -> Text,
        issuer -> Text,
        subject -> Text,
        acr -> Nullable<Text>,
        level -> Text,
        id_token -> Text,
        authenticated_at -> Timestamp,
        recorded_at -> Timestamp,
    }
}

diesel::table! {
    approval_fictions (application_id) {
        application_id -> Text,
        statute -> Text,
        started_on -> Nullable<Text>,
        ends_on -> Nullable<Text>,
        alert_on -> Nullable<Text>,
        extended_at -> Nullable<Timestamp>,
        extended_by -> Nullable<Text>,
        extension_reasons -> Nullable<Text>,
        occurred_at -> Nullable<Timestamp>,
        stopped_at -> Nullable<Timestamp>,
        stop_reason -> Nullable<Text>,
    }
}

diesel::joinable!(approval_fictions -> applications (application_id));
diesel::allow_tables_to_appear_in_same_query!(applications, approval_fictions);
