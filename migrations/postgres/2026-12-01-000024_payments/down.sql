DROP TABLE payment_steps;
DROP TABLE payments;
