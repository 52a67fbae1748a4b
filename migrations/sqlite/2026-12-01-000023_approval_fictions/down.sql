DROP TABLE approval_fictions;
