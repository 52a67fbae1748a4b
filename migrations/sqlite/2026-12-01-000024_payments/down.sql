DROP TABLE kassenzeichen_numbers;
DROP TABLE payment_refunds;
DROP TABLE payment_steps;
DROP TABLE payments;
