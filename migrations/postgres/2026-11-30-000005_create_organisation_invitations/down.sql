DROP TABLE organisation_invitations;
