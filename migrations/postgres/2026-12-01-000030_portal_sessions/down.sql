DROP TABLE portal_feedback;
DROP TABLE portal_sessions;
